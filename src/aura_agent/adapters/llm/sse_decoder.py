"""Incremental decoder for the Server-Sent Events an upstream model API streams to us.

It follows the WHATWG event-stream parsing rules for the parts a chat stream uses (comments,
`data` fields, blank-line dispatch, the three line endings) and ignores the other fields.
It runs once per network chunk for every reply token, so the common case, whole
`data: {...}\\n\\n` events with `\\n` endings, takes a short path over bytes: one `split`,
no regex, and UTF-8 decoding of complete data lines only (a character split across
chunks is never decoded half-way).
"""

from __future__ import annotations

__all__ = ["SSEDecoder", "SSEError"]

_BOM = b"\xef\xbb\xbf"
_CR = b"\r"
_LF = b"\n"
_COLON = 58  # ord(":"), compared as an int to avoid slicing a one-byte string per line


class SSEError(ValueError):
    """The stream cannot be an event stream (a line grew beyond the decoder's limit)."""


class SSEDecoder:
    """Turns the chunks of one event stream into the `data` payloads of its events.

    Create one per stream; it keeps the unfinished line and event between chunks.
    """

    __slots__ = ("_at_start", "_data", "_max_line", "_skip_lf", "_tail")

    def __init__(self, *, max_line_bytes: int = 8 * 1024 * 1024) -> None:
        # Bounds the unfinished line kept between chunks, so an upstream that never sends a
        # line break cannot make us buffer without limit.
        self._max_line = max_line_bytes
        self._tail = b""  # bytes after the last line break seen (an unfinished line)
        self._data: str | None = None  # data of the event being built; None: no data line yet
        self._skip_lf = False  # the previous chunk ended in "\r": a leading "\n" ends no line
        self._at_start = True  # a UTF-8 byte order mark may open the stream

    def feed(self, chunk: bytes) -> list[str]:
        """Add a chunk; return the data of every event it completed, in order."""
        if not chunk:  # must not reset the pending "\r\n" check below
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == _LF:
                chunk = chunk[1:]
        if self._tail:
            chunk = self._tail + chunk
        if _CR in chunk:
            # Rare: normalise "\r\n" and lone "\r" to "\n". A trailing "\r" already ends its
            # line; remember it so that a "\n" opening the next chunk is not a second break.
            self._skip_lf = chunk[-1:] == _CR
            chunk = chunk.replace(b"\r\n", _LF).replace(_CR, _LF)
        lines = chunk.split(_LF)
        self._tail = lines.pop()
        if len(self._tail) > self._max_line:
            raise SSEError(f"an event stream line exceeded {self._max_line} bytes")
        if self._at_start and lines:
            self._at_start = False
            if lines[0].startswith(_BOM):
                lines[0] = lines[0][3:]
        return self._lines(lines) if lines else []

    def flush(self) -> list[str]:
        """End the stream; return the data of an event left without its closing blank line.

        The specification discards such an event. We dispatch it when its last line was
        complete, because some OpenAI-compatible servers end with a single line break; a line
        cut off half-way is still discarded, so a truncated stream stays visibly truncated.
        """
        data = self._data if not self._tail else None
        self._tail = b""
        self._data = None
        self._skip_lf = False
        return [] if data is None else [data]

    def _lines(self, lines: list[bytes]) -> list[str]:
        events: list[str] = []
        data = self._data
        for line in lines:
            if not line:  # a blank line dispatches the event, if it has data
                if data is not None:
                    events.append(data)
                    data = None
            elif line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                text = value.decode("utf-8", "replace")
                data = text if data is None else f"{data}\n{text}"
            elif line[0] == _COLON:  # a comment, e.g. ": OPENROUTER PROCESSING"
                continue
            elif line == b"data":  # a field name with no colon has an empty value
                data = "" if data is None else f"{data}\n"
            # event, id, retry and unknown fields: not used by chat streams
        self._data = data
        return events
