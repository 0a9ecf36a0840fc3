"""Where a msgspec `ValidationError` points, so every refusal can name the field at fault.

msgspec says where a value failed at the end of its message (`... - at `$.messages[0].role``)
and names a missing field inside it; the request decoders (`/chat`, `/v1`), the settings and
the models file all turn that into their own wording, from this one reading.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

import msgspec

__all__ = ["ErrorLocation", "locate"]

_AT: Final = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING: Final = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN: Final = re.compile(r"unknown field `([^`]+)`")


class ErrorLocation(NamedTuple):
    """`path` like `messages[0].role` ("" for the document itself); `reason` is msgspec's words
    without the location; `missing` names a required field that is absent, `unknown` a field
    a Struct that forbids unknown fields does not have (None otherwise)."""

    path: str
    reason: str
    missing: str | None
    unknown: str | None = None


def locate(exc: msgspec.ValidationError) -> ErrorLocation:
    """The location and reason of a validation error."""
    text = str(exc)
    at = _AT.search(text)
    missing = _MISSING.search(text)
    unknown = _UNKNOWN.search(text)
    return ErrorLocation(
        path=at.group(1) if at else "",
        reason=text[: at.start()] if at else text,
        missing=missing.group(1) if missing else None,
        unknown=unknown.group(1) if unknown else None,
    )
