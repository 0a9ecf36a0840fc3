"""Server-Sent Events encoding for the downstream wire format.

A token becomes one unnamed event. Line breaks inside a token (\\n, \\r\\n or \\r) are split over
several `data:` lines, which a spec-compliant parser joins back with \\n, so the text survives
exactly (up to the normalisation of \\r\\n and \\r to \\n that SSE itself performs).
"""

from __future__ import annotations

import re

KEEPALIVE = b": keep-alive\n\n"
DONE = b"event: done\ndata: [DONE]\n\n"


class LastChunk(bytes):
    """The last bytes of an event stream (`done` or the final error).

    The relay writes them with the end of the body in one send: the server then puts the last
    event and the chunked-encoding terminator in one write, one syscall and one client read per
    stream fewer.
    """

    __slots__ = ()


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _data_lines(text: str) -> str:
    if "\n" not in text and "\r" not in text:
        return "data: " + text + "\n"
    return "".join("data: " + line + "\n" for line in _LINE_BREAK.split(text))


def encode_data(text: str) -> bytes:
    """One unnamed event carrying `text`."""
    return (_data_lines(text) + "\n").encode()


def encode_event(name: str, text: str) -> bytes:
    """A named event, e.g. `error` or `usage`."""
    return ("event: " + name + "\n" + _data_lines(text) + "\n").encode()


def encode_error(message: str) -> bytes:
    """The event that ends a failed stream; `message` must already be safe to show."""
    return encode_event("error", message)
