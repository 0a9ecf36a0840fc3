"""OpenRouter's streaming Chat Completions API as a `ChatModel`: a configured OpenAI-compatible one.

What is OpenRouter-specific is small and lives here: usage is requested with its own
`usage: {"include": true}` body field (not `stream_options`), the optional `HTTP-Referer` and
`X-Title` attribution headers, and a key is mandatory. Everything else (the `: OPENROUTER
PROCESSING` comments, in-band errors, `metadata.raw` in error bodies, the first-token deadline,
closing upstream on cancel) is handled by the generic adapter and the shared error mapping.
"""

from __future__ import annotations

from typing import Final

import httpx

from aura_agent.adapters.llm.openai_compatible import OpenAICompatibleChatModel

__all__ = ["OpenRouterChatModel"]

_USAGE: Final = {"usage": {"include": True}}


class OpenRouterChatModel(OpenAICompatibleChatModel):
    """Streams replies from OpenRouter; see the module docstring."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        api_key: str,
        url: str,
        default_model: str,
        default_temperature: float,
        default_max_tokens: int,
        first_token_timeout: float,
        provider: str,
        label: str,
        referer: str | None = None,
        title: str | None = None,
        check_timeout: float = 5.0,
    ) -> None:
        if not api_key:
            raise ValueError("an OpenRouter API key is required")
        attribution: dict[str, str] = {}
        if referer:
            attribution["HTTP-Referer"] = referer
        if title:
            attribution["X-Title"] = title
        super().__init__(
            client=client,
            url=url,
            api_key=api_key,
            default_model=default_model,
            default_temperature=default_temperature,
            default_max_tokens=default_max_tokens,
            first_token_timeout=first_token_timeout,
            provider=provider,
            label=label,
            extra_headers=attribution,
            extra_body=_USAGE,
            include_usage=False,
            check_timeout=check_timeout,
        )
