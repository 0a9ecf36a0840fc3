"""OpenRouter's streaming Chat Completions API as a `ChatModel`: a configured OpenAI-compatible one.

What is OpenRouter-specific is small and lives here: usage is requested with its own
`usage: {"include": true}` body field (not `stream_options`), the optional `HTTP-Referer` and
`X-Title` attribution headers, and a key is mandatory. Everything else (the `: OPENROUTER
PROCESSING` comments, in-band errors, `metadata.raw` in error bodies, the first-token deadline,
closing upstream on cancel) is handled by the generic adapter and the shared error mapping.
"""

from __future__ import annotations

from typing import Final, Unpack

from aura_agent.adapters.llm.base import Endpoint
from aura_agent.adapters.llm.openai_compatible import OpenAICompatibleChatModel

__all__ = ["OpenRouterChatModel"]

_USAGE: Final = {"usage": {"include": True}}


class OpenRouterChatModel(OpenAICompatibleChatModel):
    """Streams replies from OpenRouter; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str,
        referer: str | None = None,
        title: str | None = None,
        **endpoint: Unpack[Endpoint],
    ) -> None:
        if not api_key:
            raise ValueError("an OpenRouter API key is required")
        attribution: dict[str, str] = {}
        if referer:
            attribution["HTTP-Referer"] = referer
        if title:
            attribution["X-Title"] = title
        super().__init__(
            api_key=api_key,
            extra_headers=attribution,
            extra_body=_USAGE,
            include_usage=False,
            **endpoint,
        )
