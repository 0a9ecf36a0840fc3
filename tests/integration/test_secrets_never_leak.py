"""No key ever leaves the process: not in a response body or header, not in a log line.

The real `aura-agent serve` runs at LOG_LEVEL=DEBUG (the most it will ever write) with
distinctive keys for every secret it holds: the internal API key, the OpenRouter key and the keys
of an OpenAI-compatible and an Anthropic route from a MODELS_FILE. Then a representative set of
requests runs every path: success on each route, 401, 400s, 413, 415, 404, 405, upstream
401/429/500 and in-band errors whose bodies echo the key the upstream received, a first-token
timeout, a client disconnect, the sessions API and the readiness probe. The keys chosen do not
look like `sk-...` or `Bearer ...`, so only the explicit redaction of configured secrets can hide
them (the pattern-based scrubbing would hide the usual shapes anyway).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import pytest

from aura_agent.testing.fake_anthropic import FakeAnthropic
from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.server_process import ServerProcess, running_server
from tests.support import parse_sse, terminal_event

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

INTERNAL_KEY = "aura-internal-LEAKCHECK-7f3a9c1e5b2d"
OPENROUTER_KEY = "openrouter-LEAKCHECK-41c8e2a9d07b"
OPENAI_ROUTE_KEY = "openai-route-LEAKCHECK-9b5d13f7e2c4"
ANTHROPIC_ROUTE_KEY = "anthropic-route-LEAKCHECK-2e6a8c0f4d91"
WRONG_KEY = "presented-wrong-LEAKCHECK-5d3b1a7c9e"
SECRETS = (INTERNAL_KEY, OPENROUTER_KEY, OPENAI_ROUTE_KEY, ANTHROPIC_ROUTE_KEY, WRONG_KEY)
ROUTE_KEYS = {"main": OPENROUTER_KEY, "oai": OPENAI_ROUTE_KEY, "claude": ANTHROPIC_ROUTE_KEY}
AUTH = {"x-api-key": INTERNAL_KEY}


def _fragments(secret: str) -> list[str]:
    """The secret and its distinctive tail, so a half-redacted key is caught as well."""
    return [secret, secret.split("LEAKCHECK-", 1)[1]]


@dataclass(slots=True)
class Transcript:
    """Everything the server said to the outside: responses (status, headers, body)."""

    parts: list[str] = field(default_factory=list)

    def add(self, response: httpx.Response, body: bytes | None = None) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        content = response.content if body is None else body
        self.parts.append(f"{response.status_code}\n{headers}\n\n{content.decode('latin-1')}")
        return response

    @property
    def text(self) -> str:
        return "\n---\n".join(self.parts)


@dataclass(slots=True)
class Setup:
    server: ServerProcess
    openrouter: FakeOpenRouter
    anthropic: FakeAnthropic


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Setup]:
    async with AsyncExitStack() as stack:
        openrouter = await stack.enter_async_context(FakeOpenRouter())
        anthropic = await stack.enter_async_context(FakeAnthropic())
        routes = {
            "main": {
                "provider": "openrouter",
                "model": "fake/main",
                "base_url": openrouter.base_url,
            },
            "oai": {
                "provider": "openai",
                "model": "gpt-fake",
                "base_url": openrouter.base_url,
                "api_key_env": "OAI_ROUTE_KEY",
            },
            "claude": {
                "provider": "anthropic",
                "model": "claude-fake",
                "base_url": anthropic.base_url,
                "api_key_env": "CLAUDE_ROUTE_KEY",
            },
        }
        models = tmp_path / "models.json"
        models.write_bytes(msgspec.json.encode({"default": "main", "routes": routes}))
        server = await stack.enter_async_context(
            running_server(
                tmp_path / "server",
                AURA_ENV="production",
                LOG_LEVEL="DEBUG",
                INTERNAL_API_KEY=INTERNAL_KEY,
                OPENROUTER_API_KEY=OPENROUTER_KEY,
                OAI_ROUTE_KEY=OPENAI_ROUTE_KEY,
                CLAUDE_ROUTE_KEY=ANTHROPIC_ROUTE_KEY,
                MODELS_FILE=str(models),
                ROUTE_MAX_RETRIES="0",
                UPSTREAM_FIRST_TOKEN_TIMEOUT="0.5",
                KEEPALIVE_SECONDS="0.2",
                MAX_BODY_BYTES="4096",
            )
        )
        yield Setup(server, openrouter, anthropic)


def _in_band(route: str, message: str) -> dict[str, object]:
    if route == "claude":
        return {"type": "api_error", "message": message}
    return {"code": 500, "message": message}


def _fake_for(setup: Setup, route: str) -> FakeOpenRouter:
    return setup.anthropic if route == "claude" else setup.openrouter


async def test_no_key_appears_in_any_response_or_log_line(tmp_path: Path) -> None:
    transcript = Transcript()
    errors_seen: list[str] = []
    async with serving(tmp_path) as setup:
        server = setup.server
        async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:

            async def chat(body: dict[str, object], headers: dict[str, str] = AUTH) -> None:
                response = transcript.add(await http.post("/chat", json=body, headers=headers))
                if response.status_code == 200:
                    last = terminal_event(parse_sse(response.content))
                    if last.event == "error":
                        errors_seen.append(last.data)

            # Success on every route, then the same session read back and forgotten.
            for route in ROUTE_KEYS:
                _fake_for(setup, route).enqueue(Script(tokens=["fine"]))
                await chat({"message": "hi", "model": route, "session_id": f"ok-{route}"})
            transcript.add(await http.get("/sessions/ok-main", headers=AUTH))
            transcript.add(await http.delete("/sessions/ok-main", headers=AUTH))
            transcript.add(await http.get("/health"))
            transcript.add(await http.get("/ready"))

            # Refused before the stream: 401, 400, 413, 415, 404, 405.
            await chat({"message": "hi"}, headers={})
            await chat({"message": "hi"}, headers={"x-api-key": WRONG_KEY})
            transcript.add(await http.get("/sessions/x", headers={"x-api-key": WRONG_KEY}))
            await chat({"message": ""})
            await chat({"message": "hi", "session_id": "a:b"})
            await chat({"message": "hi", "model": "not-a-route"})
            await chat({"message": "x" * 10_000})
            transcript.add(
                await http.post(
                    "/chat", content=b"{}", headers={**AUTH, "content-type": "text/plain"}
                )
            )
            transcript.add(await http.post("/chat", content=b"{broken", headers=AUTH))
            transcript.add(await http.get("/nope", headers=AUTH))
            transcript.add(await http.put("/chat", headers=AUTH))

            # Upstream errors whose bodies echo the key the upstream was sent.
            for route, key in ROUTE_KEYS.items():
                _fake_for(setup, route).enqueue(
                    Script(status=401, error_message=f"Invalid API key {key} provided"),
                    Script(
                        status=429,
                        headers={"Retry-After": "1"},
                        error_message=f"Rate limit for key {key}",
                    ),
                    Script(status=500, error_message=f"Traceback: key={key}"),
                    Script(tokens=["a"], in_band_error=_in_band(route, f"boom {key}")),
                    Script(stall=True),
                )
                for index in range(5):
                    await chat({"message": "hi", "model": route, "session_id": f"e{index}"})

            # A client that leaves in the middle of a reply.
            setup.openrouter.enqueue(
                Script(tokens=[f"t{i} " for i in range(100)], token_delay=0.02)
            )
            async with http.stream(
                "POST", "/chat", json={"message": "long"}, headers=AUTH
            ) as streamed:
                received = b""
                async for chunk in streamed.aiter_bytes():
                    received += chunk
                    if b"data: t" in received:
                        break
                transcript.add(streamed, received)
            await setup.openrouter.wait_closed(len(setup.openrouter.requests) - 1, timeout=5)
            transcript.add(await http.get("/health"))
        server.stop()
        log = server.log_path.read_text(encoding="utf-8", errors="replace")

    # The paths were really taken: upstream echoes came back (scrubbed), errors were logged.
    assert len(errors_seen) == 3 * 5, errors_seen
    assert sum("***" in error for error in errors_seen) >= 3 * 3, errors_seen
    assert '"event": "auth_failed"' in log
    assert '"outcome": "error:ProviderAuthError"' in log
    assert '"outcome": "client_disconnected"' in log or '"outcome": "error:' in log

    text = transcript.text
    for secret in SECRETS:
        for fragment in _fragments(secret):
            assert fragment not in text, f"{fragment!r} leaked into a response"
            assert fragment not in log, f"{fragment!r} leaked into the log"


async def test_a_failed_auth_attempt_is_logged_with_its_reason_but_not_the_key(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as setup:
        server = setup.server
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            wrong = await http.post(
                "/chat", json={"message": "hi"}, headers={"x-api-key": WRONG_KEY}
            )
            missing = await http.post("/chat", json={"message": "hi"})
            prefix = await http.post(
                "/chat", json={"message": "hi"}, headers={"x-api-key": INTERNAL_KEY[:-1]}
            )
        server.stop()
        lines = [
            msgspec.json.decode(line)
            for line in server.log_path.read_text(encoding="utf-8").splitlines()
            if line.startswith("{")
        ]
    assert [r.status_code for r in (wrong, missing, prefix)] == [401, 401, 401]
    failures = [line for line in lines if line.get("event") == "auth_failed"]
    assert [(f["reason"], f["path"]) for f in failures] == [
        ("wrong", "/chat"),
        ("missing", "/chat"),
        ("wrong", "/chat"),
    ]
    assert all(f["level"] == "warning" for f in failures)
    everything = "\n".join(msgspec.json.encode(line).decode() for line in lines)
    for fragment in (*_fragments(WRONG_KEY), *_fragments(INTERNAL_KEY), INTERNAL_KEY[:-1]):
        assert fragment not in everything
    for response in (wrong, missing, prefix):
        assert WRONG_KEY not in response.text
        assert INTERNAL_KEY[:-1] not in response.text
