"""The serving process freezes its startup heap and collects young objects less often."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_started_server_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    # In a child process: freezing the test process would keep every later test's garbage.
    script = """
import asyncio, gc, json
import uvicorn
from aura_agent.server import DrainingServer

async def started(self, sockets=None):  # uvicorn's own startup (sockets, lifespan) not needed
    return None

uvicorn.Server.startup = started
before = gc.get_freeze_count(), gc.get_threshold()
asyncio.run(DrainingServer(uvicorn.Config("none:app")).startup())
print(json.dumps({"before": before, "after": (gc.get_freeze_count(), gc.get_threshold())}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"][0] == 0
    assert result["after"][0] > 10_000  # the modules and objects startup made
    assert result["after"][1][0] > result["before"][1][0]
