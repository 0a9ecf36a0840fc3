"""Token usage as the seed API shows it: the `/chat` `usage` event and `GET /sessions` messages.

One flat shape with the Chat Completions names, so a client reads the same keys everywhere;
the reasoning and cached counts appear only when the provider reported them.
"""

from __future__ import annotations

from typing import Final

import msgspec

from aura_agent.domain.models import Usage
from aura_agent.http.sse.encoding import encode_event


class UsageBody(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Token counts of one reply."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None


def usage_body(usage: Usage) -> UsageBody:
    """The wire shape of a domain `Usage` (which carries a msgspec tag the wire must not show)."""
    return UsageBody(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cached_tokens=usage.cached_tokens,
    )


_encoder: Final = msgspec.json.Encoder()


def encode_usage_event(usage: Usage) -> bytes:
    """`event: usage` with the counts as one JSON line; sent once, right before `done`."""
    return encode_event("usage", _encoder.encode(usage_body(usage)).decode())
