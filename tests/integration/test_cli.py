"""`aura-agent check` and `aura-agent chat` as real processes, against real loopback servers.

`chat` runs in a pseudo-terminal (pexpect) for the interactive behaviour (prompt, Ctrl-C) and
with piped stdin for scripts. The FakeOpenRouter runs in the test's event loop, so everything
here waits asynchronously (pexpect's `async_=True`, asyncio subprocesses) to keep it serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pexpect
import pytest
import pytest_asyncio

from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.server_process import CLI, ServerProcess, environment, free_port, running_server

pytestmark = pytest.mark.e2e

INTERNAL_KEY = "cli-test-internal-key-81f2"
OPENROUTER_KEY = "sk-or-v1-cli-test-secret-9a8b7c"


async def _run(
    workdir: Path, *args: str, stdin: str | None = None, **env: str
) -> tuple[int, str, str]:
    """Run `aura-agent ARGS` without blocking the loop; return exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        cwd=workdir,
        env=environment(**env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        process.communicate(None if stdin is None else stdin.encode()), 30
    )
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _row(table: str, component: str) -> str:
    rows = [line for line in table.splitlines() if line.startswith(component + " ")]
    assert len(rows) == 1, f"no single row for {component!r} in:\n{table}"
    return rows[0]


# -- check -------------------------------------------------------------------------------------


async def test_check_passes_for_the_demo_model_and_memory_store(tmp_path: Path) -> None:
    status, out, err = await _run(tmp_path, "check", LLM_PROVIDER="demo")
    assert status == 0, out + err
    assert "pass" in _row(out, "configuration")
    assert "pass" in _row(out, "route aura/offline-demo")
    assert "pass" in _row(out, "session store (memory)")
    assert "FAIL" not in out
    assert "all checks passed" in out


async def test_check_pings_an_openrouter_route(tmp_path: Path) -> None:
    async with FakeOpenRouter() as fake:
        status, out, err = await _run(
            tmp_path,
            "check",
            OPENROUTER_API_KEY=OPENROUTER_KEY,
            OPENROUTER_API_URL=fake.chat_url,
        )
    assert status == 0, out + err
    assert "pass" in _row(out, "route deepseek/deepseek-chat")
    probes = [r for r in fake.requests if r.method == "GET"]
    assert [r.path for r in probes] == ["/api/v1/models"]
    assert probes[0].headers["authorization"] == f"Bearer {OPENROUTER_KEY}"
    assert OPENROUTER_KEY not in out + err


async def test_check_fails_naming_a_dead_route(tmp_path: Path) -> None:
    dead = free_port()
    async with FakeOpenRouter() as fake:
        models = tmp_path / "models.toml"
        models.write_text(
            f"""
default = "good"

[routes.good]
provider = "openrouter"
model = "deepseek/deepseek-chat"
base_url = "{fake.base_url}"
fallbacks = ["broken"]

[routes.broken]
provider = "openai"
model = "llama3.2"
base_url = "http://127.0.0.1:{dead}/v1"
api_key_env = ""
""",
            encoding="utf-8",
        )
        status, out, err = await _run(
            tmp_path, "check", MODELS_FILE=str(models), OPENROUTER_API_KEY=OPENROUTER_KEY
        )
    assert status == 1, out + err
    assert "pass" in _row(out, "route good")
    broken = _row(out, "route broken")
    assert "FAIL" in broken
    assert f"127.0.0.1:{dead}" in broken
    assert "1 check(s) failed: route broken" in out
    assert "Traceback" not in out + err


async def test_check_fails_naming_an_unreachable_redis(tmp_path: Path) -> None:
    dead = free_port()
    status, out, err = await _run(
        tmp_path,
        "check",
        LLM_PROVIDER="demo",
        SESSION_STORE="redis",
        REDIS_URL=f"redis://:hunter2-secret@127.0.0.1:{dead}/0",
        REDIS_SOCKET_TIMEOUT="1",
    )
    assert status == 1, out + err
    row = _row(out, "session store (redis)")
    assert "FAIL" in row
    assert f"127.0.0.1:{dead}" in row
    assert "pass" in _row(out, "route aura/offline-demo")
    assert "hunter2-secret" not in out + err


async def test_check_reports_a_bad_setting_and_exits_2(tmp_path: Path) -> None:
    status, out, err = await _run(tmp_path, "check", MODEL_TEMPERATURE="9")
    assert status == 2
    assert "MODEL_TEMPERATURE" in err
    assert "Traceback" not in err
    assert out == ""


# -- chat --------------------------------------------------------------------------------------


class Harness:
    def __init__(self, fake: FakeOpenRouter, server: ServerProcess) -> None:
        self.fake = fake
        self.server = server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with (
        FakeOpenRouter() as fake,
        running_server(
            tmp_path_factory.mktemp("cli-server"),
            INTERNAL_API_KEY=INTERNAL_KEY,
            OPENROUTER_API_KEY=OPENROUTER_KEY,
            OPENROUTER_API_URL=fake.chat_url,
        ) as server,
    ):
        yield Harness(fake, server)


def _spawn_chat(harness: Harness, workdir: Path, *args: str) -> pexpect.spawn[str]:
    return pexpect.spawn(
        CLI,
        ["chat", "--url", harness.server.base_url, "--key", INTERNAL_KEY, *args],
        cwd=str(workdir),
        env=environment(TERM="dumb"),
        encoding="utf-8",
        timeout=10,
        dimensions=(40, 200),
    )


@pytest.mark.asyncio(loop_scope="module")
async def test_chat_in_a_terminal_streams_keeps_the_session_and_stops_on_ctrl_c(
    harness: Harness, tmp_path: Path
) -> None:
    fake = harness.fake
    fake.enqueue(
        Script(tokens=["Hello", " from", " the", " fake"], token_delay=0.02),
        Script(tokens=["Second", " reply"]),
        Script(tokens=[f"w{i} " for i in range(400)], token_delay=0.05),
        Script(tokens=["Still", " here"]),
    )
    first = len(fake.chat_requests)
    child = _spawn_chat(harness, tmp_path)
    try:
        await child.expect_exact("you> ", async_=True)
        child.sendline("hello")
        await child.expect_exact("Hello from the fake", async_=True)
        await child.expect_exact("you> ", async_=True)

        child.sendline("again")
        await child.expect_exact("Second reply", async_=True)
        await child.expect_exact("you> ", async_=True)
        assert fake.chat_requests[first + 1].json["messages"] == [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hello from the fake"},
            {"role": "user", "content": "again"},
        ]

        long_index = len(fake.requests)
        child.sendline("tell me a long story")
        await child.expect_exact("w3 ", async_=True)
        record = fake.requests[long_index]
        assert record.finished_at is None, "the reply was printed only once complete"
        child.sendintr()
        await child.expect_exact("stopped", async_=True)
        await child.expect_exact("you> ", async_=True)
        record = await fake.wait_closed(long_index, timeout=5)
        assert record.client_closed, "Ctrl-C did not close the stream up to the model"
        assert child.isalive(), "Ctrl-C during a reply must not quit"

        child.sendline("still there?")
        await child.expect_exact("Still here", async_=True)
        await child.expect_exact("you> ", async_=True)
        messages = fake.chat_requests[-1].json["messages"]
        assert [m["content"] for m in messages] == [
            "hello",
            "Hello from the fake",
            "again",
            "Second reply",
            "still there?",
        ], "same session, and the stopped turn was not saved"

        child.sendline("/quit")
        await child.expect(pexpect.EOF, async_=True)
        child.wait()
        assert child.exitstatus == 0
        assert "Traceback" not in (child.before or "")
    finally:
        child.close(force=True)


@pytest.mark.asyncio(loop_scope="module")
async def test_chat_in_a_terminal_exits_0_on_ctrl_d(harness: Harness, tmp_path: Path) -> None:
    child = _spawn_chat(harness, tmp_path)
    try:
        await child.expect_exact("you> ", async_=True)
        child.sendeof()
        await child.expect(pexpect.EOF, async_=True)
        child.wait()
        assert child.exitstatus == 0
    finally:
        child.close(force=True)


@pytest.mark.asyncio(loop_scope="module")
async def test_chat_with_piped_input(harness: Harness, tmp_path: Path) -> None:
    fake = harness.fake
    fake.enqueue(Script(tokens=["One", "\n", "two"]), Script(tokens=["B"]), Script(tokens=["C"]))
    first = len(fake.chat_requests)
    status, out, err = await _run(
        tmp_path,
        "chat",
        "--url",
        harness.server.base_url,
        stdin="first\nsecond\n/new\nthird\n",
        INTERNAL_API_KEY=INTERNAL_KEY,  # the default key comes from the environment
    )
    assert status == 0, err
    assert out == "One\ntwo\nB\nC\n", "stdout holds exactly the replies, without prompts"
    assert "you>" not in out + err
    payloads = [request.json for request in fake.chat_requests[first:]]
    assert [m["content"] for m in payloads[1]["messages"]] == ["first", "One\ntwo", "second"]
    assert payloads[2]["messages"] == [{"role": "user", "content": "third"}], "/new kept history"


@pytest.mark.asyncio(loop_scope="module")
async def test_chat_prints_errors_plainly(harness: Harness, tmp_path: Path) -> None:
    base = harness.server.base_url
    status, out, err = await _run(
        tmp_path, "chat", "--url", base, "--key", "wrong-key", stdin="hello\n"
    )
    assert status == 1
    assert out == ""
    assert err.strip() == (
        "error: 401 Unauthorized: the x-api-key header does not match a known key"
    )

    harness.fake.enqueue(Script(tokens=["Part"], in_band_error={"code": 502, "message": "Boom"}))
    status, out, err = await _run(
        tmp_path, "chat", "--url", base, "--key", INTERNAL_KEY, stdin="hello\n"
    )
    assert status == 1
    assert out == "Part\n"
    assert err.startswith("error: ")
    assert "Boom" in err

    status, out, err = await _run(
        tmp_path, "chat", "--url", f"http://127.0.0.1:{free_port()}", "--key", "k", stdin="hi\n"
    )
    assert status == 1
    assert "error: cannot reach http://127.0.0.1:" in err

    status, out, err = await _run(tmp_path, "chat", "--url", base, stdin="hi\n")
    assert status == 2
    assert "INTERNAL_API_KEY" in err
    for text in (out, err):
        assert "Traceback" not in text
