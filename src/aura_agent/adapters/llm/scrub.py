"""Upstream text made safe to quote to a user: no key, no link, one short line, never HTML."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["Scrubber"]

_DETAIL_LIMIT: Final = 200  # longest upstream text quoted in a user-facing message
# Anything that looks like a credential or a link is removed from upstream text we quote.
_SECRET_RE: Final = re.compile(r"(?i)\bbearer\s+\S+|\bsk-[A-Za-z0-9_-]{6,}")
_URL_RE: Final = re.compile(r"(?i)\b(?:https?|wss?)://\S+")


class Scrubber:
    """Cleans upstream text, knowing the secrets (API keys) of one adapter."""

    __slots__ = ("secrets",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a key that contains another secret is replaced whole.
        self.secrets = tuple(sorted((s for s in secrets if s), key=len, reverse=True))

    def clean(self, text: str | None) -> str | None:
        """Upstream text made safe to quote: no key, no link, one short line, never HTML."""
        if not text:
            return None
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = _SECRET_RE.sub("***", text)
        text = _URL_RE.sub("<link>", text)
        text = " ".join(text.split())
        if not text or text.startswith("<"):  # an HTML error page says nothing useful
            return None
        if "Traceback (most recent call last)" in text:
            return None
        if len(text) > _DETAIL_LIMIT:
            text = text[: _DETAIL_LIMIT - 1].rstrip() + "…"
        return text
