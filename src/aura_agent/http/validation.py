"""Rules every API applies to what a client sends, written once: session ids, control characters.

Each API words its refusal in its own shape (problem+json for the seed API, OpenAI's error
object under `/v1`); what is allowed is decided here, so an id or a message is accepted by one
endpoint exactly when the others accept it.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, NamedTuple

import msgspec

__all__ = [
    "CONTROL_CHARACTER_RULE",
    "SESSION_ID_PATTERN",
    "SESSION_ID_RULE",
    "ControlCharacter",
    "SessionId",
    "find_control_character",
    "is_session_id",
]

SESSION_ID_PATTERN: Final = "^[A-Za-z0-9_-]{1,128}$"
SESSION_ID_RULE: Final = "must be 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'"
# Python's `$` also matches before a final "\n" (and msgspec searches with the pattern), so ids
# are checked with `fullmatch` too: an id ends up in store keys and a response header.
_SESSION_ID: Final = re.compile(SESSION_ID_PATTERN)

SessionId = Annotated[str, msgspec.Meta(pattern=SESSION_ID_PATTERN)]
"""A session id field; decoders must still confirm it with `is_session_id` (see above)."""

# C0 control characters other than tab, line feed and carriage return: never part of a typed
# message, and NUL in particular breaks many downstream systems.
_CONTROL_CHARACTER: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
CONTROL_CHARACTER_RULE: Final = "only tab, line feed and carriage return are allowed"


class ControlCharacter(NamedTuple):
    """A forbidden character found in a text: `U+XXXX`, and where it is."""

    code_point: str
    position: int


def is_session_id(candidate: str) -> bool:
    """Whether `candidate` may name a session."""
    return _SESSION_ID.fullmatch(candidate) is not None


def find_control_character(text: str) -> ControlCharacter | None:
    """The first forbidden control character in `text`, or None."""
    found = _CONTROL_CHARACTER.search(text)
    if found is None:
        return None
    return ControlCharacter(f"U+{ord(found.group()):04X}", found.start())
