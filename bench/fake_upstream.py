"""The fake OpenRouter's own CLI, with a listen backlog big enough for 1,000 connections at once.

    python bench/fake_upstream.py --port 0 --tokens 64 --token-delay-ms 20

Same arguments and output as ``python -m aura_agent.testing.fake_openrouter``. The only change:
``asyncio.start_server`` listens with a backlog of 4096 (capped by ``net.core.somaxconn``)
instead of asyncio's default of 100. With 100, a gateway that opens hundreds of upstream
connections at once (``slow1000``) overflows the accept queue while the fake's core is busy; the
kernel drops the SYNs and the client retries after 1 s, 3 s, 7 s: seconds of TTFT and timeouts
that a real provider's listener would not cause. (A ``backlog`` option on ``FakeOpenRouter``
would make this shim unnecessary.)
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aura_agent.testing import fake_openrouter

BACKLOG = 4096
_start_server = asyncio.start_server


async def _start_server_with_backlog(*args: Any, **kwargs: Any) -> asyncio.Server:
    kwargs.setdefault("backlog", BACKLOG)
    return await _start_server(*args, **kwargs)


if __name__ == "__main__":
    asyncio.start_server = _start_server_with_backlog
    sys.exit(fake_openrouter.main())
