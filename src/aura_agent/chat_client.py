"""`aura-agent chat`: a terminal client for `POST /chat`, to try a running service by hand.

It is an ordinary client of the public API (the same requests a frontend sends), so it also
shows what a correct client does: send `x-api-key`, read the SSE body as it arrives, keep the
`X-Session-Id` for the next message, and treat `event: done` / `event: error` as the end.

Ctrl-C during a reply closes the HTTP stream (the server then hangs up on the model, and the
unfinished turn is not saved) and returns to the prompt; Ctrl-D, end of input or `/quit` exits.
The SSE parsing lives here rather than in httpx-sse, which is only a development dependency.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

import httpx
import msgspec

from aura_agent.config import parse_dotenv

DEFAULT_URL = "http://127.0.0.1:8000"
# The server sends a keep-alive comment every few seconds while the model thinks, and gives
# up on a silent model after UPSTREAM_IDLE_TIMEOUT; two minutes of silence means it is gone.
READ_TIMEOUT_SECONDS = 120.0
CONNECT_TIMEOUT_SECONDS = 10.0
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
HELP = "/new starts a new conversation, /quit or Ctrl-D exits, Ctrl-C stops a reply."


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its type (`message` when unnamed) and its data lines joined."""

    event: str
    data: str


@dataclass(slots=True)
class SSEParser:
    """The WHATWG event-stream rules over already split lines (see `iter_lines`).

    Unlike `adapters.llm.sse_decoder.SSEDecoder`, which only needs upstream `data`, a client
    of our API must tell tokens from `event: done` and `event: error`, so this keeps the type.
    """

    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _first: bool = True

    def line(self, line: str) -> SSEEvent | None:
        """Feed one line without its line break; return the event a blank line completes."""
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if not line:
            data, event = self._data, self._event
            self._data, self._event = [], ""
            return SSEEvent(event or "message", "\n".join(data)) if data else None
        if line.startswith(":"):
            return None  # a comment, e.g. ": keep-alive"
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None  # id, retry and unknown fields do not matter to this client


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a UTF-8 event stream arriving in `chunks`, without their line breaks.

    SSE ends a line only at CRLF, LF or CR (a CRLF may straddle two chunks); httpx's
    `iter_lines` also splits at U+2028, U+0085, form feeds and the like, which tokens may hold.
    A last line without a line break is yielded too.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    partial = ""
    after_cr = False
    for chunk in chunks:
        text = decoder.decode(chunk)
        if not text:
            continue
        if after_cr and text[0] == "\n":
            text = text[1:]  # the LF of a CRLF split between two chunks
        after_cr = text.endswith("\r")
        pieces = _LINE_BREAK.split(text)
        if len(pieces) == 1:
            partial += text
            continue
        yield partial + pieces[0]
        yield from pieces[1:-1]
        partial = pieces[-1]
    partial += decoder.decode(b"", final=True)
    if partial:
        yield partial


def iter_events(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """The events of a stream of lines; an event cut off by the end of the stream is dropped."""
    parser = SSEParser()
    for line in lines:
        if (event := parser.line(line)) is not None:
            yield event


class ChatError(Exception):
    """A request that produced no reply; the message is meant for the user as it is."""


Outcome = Literal["done", "error", "cut"]


@dataclass(frozen=True, slots=True)
class Reply:
    """How a streamed reply ended: `done`, `error` (with the server's message) or `cut` off."""

    outcome: Outcome
    error: str | None = None


class ChatClient:
    """One conversation with the service; `session_id` follows what the server returns."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        model: str | None = None,
        session_id: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.session_id = session_id
        self._api_key = api_key
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def new_conversation(self) -> None:
        """Forget the session id; the server makes a new one on the next message."""
        self.session_id = None

    def send(self, message: str, on_token: Callable[[str], None]) -> Reply:
        """Stream the reply to `message` through `on_token`; raise `ChatError` when refused.

        A KeyboardInterrupt while streaming leaves through the `with` block, which closes the
        response: that disconnect is what tells the server to stop the model.
        """
        body: dict[str, str] = {"message": message}
        if self.session_id:
            body["session_id"] = self.session_id
        if self.model:
            body["model"] = self.model
        headers = {"x-api-key": self._api_key, "accept": "text/event-stream"}
        streaming = False
        try:
            with self._http.stream(
                "POST", f"{self.base_url}/chat", json=body, headers=headers
            ) as response:
                if response.status_code != 200:
                    response.read()
                    raise ChatError(describe_http_error(response))
                streaming = True
                self.session_id = response.headers.get("x-session-id", self.session_id)
                for event in iter_events(iter_lines(response.iter_bytes())):
                    if event.event == "message":
                        on_token(event.data)
                    elif event.event == "done":
                        return Reply("done")
                    elif event.event == "error":
                        return Reply("error", event.data)
                return Reply("cut", "the connection closed before the reply finished")
        except httpx.InvalidURL as exc:
            raise ChatError(f"invalid URL {self.base_url!r}: {exc}") from None
        except httpx.TimeoutException:
            raise ChatError(f"no answer from {self.base_url} in time") from None
        except httpx.HTTPError as exc:
            what = "the connection broke" if streaming else f"cannot reach {self.base_url}"
            raise ChatError(f"{what}: {str(exc) or type(exc).__name__}") from None


def describe_http_error(response: httpx.Response) -> str:
    """A problem+json `detail` with its status, or the status line when the body is not one."""
    status = f"{response.status_code} {response.reason_phrase}".strip()
    try:
        problem = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return status
    if isinstance(problem, dict) and isinstance(problem.get("detail"), str):
        return f"{status}: {problem['detail']}"
    return status


def default_api_key(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> str:
    """INTERNAL_API_KEY from the environment, else from `./.env` as the server would read it."""
    environ = os.environ if environ is None else environ
    if key := environ.get("INTERNAL_API_KEY", "").strip():
        return key
    path = Path(".env") if env_file is None else env_file
    if path.is_file():
        return parse_dotenv(path.read_text(encoding="utf-8")).get("INTERNAL_API_KEY", "").strip()
    return ""


@dataclass(slots=True)
class Terminal:
    """Where the chat reads and writes; real standard streams unless a test passes its own."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def interactive(self) -> bool:
        """A person is typing: show prompts and greet; otherwise stay quiet for pipes."""
        return self.stdin.isatty()

    def read_line(self) -> str | None:
        """The next line without its line break; None at end of input (Ctrl-D)."""
        if self.interactive and self.stdin is sys.stdin and self.stdout is sys.stdout:
            try:
                return input("you> ")  # line editing and history when readline is loaded
            except EOFError:
                return None
        if self.interactive:
            self.stdout.write("you> ")
            self.stdout.flush()
        line = self.stdin.readline()
        return line.rstrip("\r\n") if line else None

    def write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def note(self, text: str) -> None:
        """Status and errors go to stderr, so piped stdout holds only the replies."""
        self.stderr.write(text + "\n")
        self.stderr.flush()


def run_chat(client: ChatClient, terminal: Terminal | None = None) -> int:
    """The read-send-print loop. Returns the exit status: 0, or 1 when input was piped and a
    reply failed (so scripts notice), or 130 when a piped run is interrupted."""
    term = terminal or Terminal()
    if term.interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - importing it gives input() editing and history
        model = client.model or "the server's default model"
        term.note(f"Aura Agent chat at {client.base_url} with {model}. {HELP}")
        if client.session_id:
            term.note(f"(continuing session {client.session_id})")
    failed = False
    while True:
        try:
            line = term.read_line()
        except KeyboardInterrupt:
            if not term.interactive:
                return 130
            term.write("\n")  # Ctrl-C at the prompt clears the line, like a shell
            continue
        if line is None:
            if term.interactive:
                term.write("\n")
            return 1 if failed and not term.interactive else 0
        message = line.strip()
        if not message:
            continue
        if message in ("/quit", "/exit"):
            return 1 if failed and not term.interactive else 0
        if message == "/new":
            client.new_conversation()
            term.note("(new conversation)")
            continue
        if message == "/help":
            term.note(HELP)
            continue
        if not _turn(client, line, term):
            failed = True


def _turn(client: ChatClient, message: str, term: Terminal) -> bool:
    """Send one message and print its reply as it streams; True when the reply completed."""
    started = False

    def on_token(token: str) -> None:
        nonlocal started
        if not started and term.interactive:
            term.write("aura> ")
        started = True
        term.write(token)

    try:
        reply = client.send(message, on_token)
    except ChatError as exc:
        if started:
            term.write("\n")
        term.note(f"error: {exc}")
        return False
    except KeyboardInterrupt:
        term.write("\n")
        term.note("[stopped: the reply was not saved]")
        return False
    if started:
        term.write("\n")
    if reply.outcome != "done":
        term.note(f"error: {reply.error}")
        return False
    return True
