"""The playground in a real headless Chromium, against the real `aura-agent serve` process.

One server (backed by an in-process FakeOpenRouter that paces its tokens, so streaming is
observable) and one browser serve the whole module; each test gets a fresh browser context, so
sessionStorage and the page start empty. The fake records when the gateway hangs up on it,
which is how Stop is checked end to end: browser abort -> server sees the disconnect -> the
upstream request is closed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.server_process import ServerProcess, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "test-artifacts" / "playground.png"
README_SCREENSHOT = REPO / "docs" / "playground.png"

INTERNAL_KEY = "playground-e2e-key-3c9b71"
OPENROUTER_KEY = "sk-or-v1-playground-e2e-5d4c3b2a"
MODELS = ("deepseek/deepseek-chat", "openai/gpt-4o-mini")
TOKEN_DELAY = 0.05

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="the playground browser test needs Debian's chromium at /usr/bin/chromium "
        "(apt-get install chromium; .ci/run installs it)",
    ),
]

# Records every distinct text of the last reply as the DOM changes, to observe streaming.
WATCH_REPLY = """() => {
  window.__states = [];
  const transcript = document.getElementById("transcript");
  new MutationObserver(() => {
    const replies = transcript.querySelectorAll(".turn.assistant .reply");
    const text = replies.length ? replies[replies.length - 1].textContent : "";
    if (window.__states[window.__states.length - 1] !== text) window.__states.push(text);
  }).observe(transcript, { childList: true, subtree: true, characterData: true });
}"""


class Harness:
    """The module's shared fake, server and browser."""

    def __init__(self, fake: FakeOpenRouter, server: ServerProcess, browser: Browser) -> None:
        self.fake = fake
        self.server = server
        self.browser = browser


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    workdir = tmp_path_factory.mktemp("playground-server")
    async with (
        FakeOpenRouter() as fake,
        running_server(
            workdir,
            INTERNAL_API_KEY=INTERNAL_KEY,
            OPENROUTER_API_KEY=OPENROUTER_KEY,
            OPENROUTER_API_URL=fake.chat_url,
            MODEL_NAME=MODELS[0],
            ALLOWED_MODELS=",".join(MODELS),
        ) as server,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield Harness(fake, server, browser)
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(harness: Harness) -> AsyncIterator[Page]:
    """A fresh context (empty storage) on the playground, with the model list loaded.

    Fails the test when the page reports a Content-Security-Policy violation or a script error:
    both would mean the page itself breaks its own policy.
    """
    context = await harness.browser.new_context(viewport={"width": 1000, "height": 760})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    await page.goto(harness.server.base_url + "/playground")
    await page.wait_for_selector("body[data-ready='true']")
    try:
        yield page
    finally:
        await context.close()
    assert problems == []


def _last_turn(page: Page) -> Locator:
    return page.locator(".turn.assistant").last


async def _send(page: Page, message: str) -> None:
    await page.fill("#message", message)
    await page.click("#send")


async def _sign_in(page: Page, key: str = INTERNAL_KEY) -> None:
    await page.fill("#api-key", key)


async def _wait_finished(page: Page, state: str = "done") -> None:
    await expect(_last_turn(page)).to_have_attribute("data-state", state, timeout=10_000)


def _tokens(text: str) -> list[str]:
    """Word tokens keeping their trailing spaces, as a model streams them."""
    return [word + " " for word in text.split(" ")[:-1]] + [text.split(" ")[-1]]


async def _stored(server: ServerProcess, session_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.get(f"/sessions/{session_id}", headers={"x-api-key": INTERNAL_KEY})


async def test_reply_streams_token_by_token_and_the_session_is_kept(
    harness: Harness, page: Page
) -> None:
    fake = harness.fake
    first = "Hello! I am a streamed reply arriving one word at a time."
    showcase = (
        "Sure. **async/await** lets one thread juggle many waits:\n\n"
        "1. `async def` makes a coroutine\n"
        "2. `await` pauses it until the result is ready\n\n"
        "```python\n"
        "async def main():\n"
        '    reply = await fetch("https://example.com")\n'
        "```\n\n"
        "See the [asyncio docs](https://docs.python.org/3/library/asyncio.html)."
    )
    fake.enqueue(
        Script(tokens=_tokens(first), token_delay=TOKEN_DELAY),
        Script(tokens=showcase.splitlines(keepends=True), token_delay=TOKEN_DELAY),
    )
    requests_before = len(fake.chat_requests)
    await _sign_in(page)
    assert await page.evaluate("sessionStorage.getItem('aura-agent.api-key')") == INTERNAL_KEY
    assert await page.evaluate("localStorage.length") == 0
    assert await page.evaluate("document.cookie") == ""
    options = await page.locator("#model option").all_text_contents()
    assert options == list(MODELS)
    assert await page.input_value("#model") == MODELS[0]

    await page.evaluate(WATCH_REPLY)
    await _send(page, "hello")
    await _wait_finished(page)
    reply = _last_turn(page).locator(".reply")
    await expect(reply).to_have_text(first)
    states: list[str] = await page.evaluate("window.__states")
    growing = [state for state in states if state and state != first]
    assert len(set(growing)) >= 3, f"the reply did not stream: {states}"
    assert all(first.startswith(state) for state in growing), states
    assert [len(state) for state in growing] == sorted(len(state) for state in growing)

    session_id = (await page.text_content("#session-id") or "").strip()
    assert session_id not in ("", "new")
    stored = await _stored(harness.server, session_id)
    assert stored.status_code == 200
    assert stored.json()["messages"][0] == {"role": "user", "content": "hello"}

    await page.select_option("#model", MODELS[1])
    await _send(page, "Explain async/await in Python")
    await _wait_finished(page)
    assert (await page.text_content("#session-id") or "").strip() == session_id
    payload = fake.chat_requests[requests_before + 1].json
    assert payload["model"] == MODELS[1]
    assert payload["messages"][:2] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": first},
    ]
    await expect(reply.locator("strong")).to_have_text("async/await")
    await expect(reply.locator("ol > li")).to_have_count(2)
    await expect(reply.locator("pre code")).to_contain_text('await fetch("https://example.com")')
    await expect(page.locator("#error")).to_be_hidden()

    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACT))
    # The README's copy is committed and shows a random session id, so it is refreshed only on
    # request (UPDATE_SCREENSHOTS=1) or when missing: test runs leave the work tree clean.
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" or not README_SCREENSHOT.exists():
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACT, README_SCREENSHOT)


async def test_stop_aborts_the_reply_and_the_server_closes_the_upstream(
    harness: Harness, page: Page
) -> None:
    fake = harness.fake
    fake.enqueue(Script(tokens=[f"word{i} " for i in range(400)], token_delay=TOKEN_DELAY))
    index = len(fake.requests)
    await _sign_in(page)
    await _send(page, "tell me a very long story")
    await expect(_last_turn(page).locator(".reply")).to_contain_text("word2")
    await expect(page.locator("#send")).to_be_disabled()
    await page.click("#stop")

    record = await fake.wait_closed(index, timeout=5)
    assert record.client_closed, "the gateway kept reading from the model after Stop"
    assert record.finished_at is not None
    assert record.finished_at - record.received_at < 10, "the model ran to completion"
    await _wait_finished(page, "stopped")
    await expect(_last_turn(page).locator(".note")).to_contain_text("Stopped")
    await expect(page.locator("#send")).to_be_enabled()
    await expect(page.locator("#stop")).to_be_disabled()
    await expect(page.locator("#error")).to_be_hidden()
    session_id = (await page.text_content("#session-id") or "").strip()
    assert (await _stored(harness.server, session_id)).status_code == 404, (
        "a stopped turn was saved"
    )


async def test_new_conversation_starts_a_new_session(harness: Harness, page: Page) -> None:
    fake = harness.fake
    fake.enqueue(Script(tokens=["first"]), Script(tokens=["second"]))
    await _sign_in(page)
    await _send(page, "one")
    await _wait_finished(page)
    first_session = (await page.text_content("#session-id") or "").strip()
    assert first_session not in ("", "new")

    await page.click("#new-conversation")
    await expect(page.locator("#session-id")).to_have_text("new")
    await expect(page.locator(".turn")).to_have_count(0)
    await _send(page, "two")
    await _wait_finished(page)
    second_session = (await page.text_content("#session-id") or "").strip()
    assert second_session not in ("", "new", first_session)
    assert fake.chat_requests[-1].json["messages"] == [{"role": "user", "content": "two"}]


async def test_model_output_is_rendered_as_inert_text(harness: Harness, page: Page) -> None:
    img = '<img src=x onerror="window.__xss=1">'
    script = "<script>window.__xss=2</script>"
    tokens = [
        "Here is ",
        img,
        " and ",
        script,
        "\n\n**bold** *it* `<b>code</b>` ",
        "[safe](https://example.com/docs) ",
        "[bad](javascript:window.__xss=3)",
        '\n\n```html\n<iframe srcdoc="<script>parent.__xss=4</script>"></iframe>\n```\n',
    ]
    harness.fake.enqueue(Script(tokens=tokens, token_delay=0.01))
    await _sign_in(page)
    await _send(page, "show me some HTML")
    await _wait_finished(page)
    await page.wait_for_timeout(300)  # an image error or a script would have run by now

    assert await page.evaluate("typeof window.__xss") == "undefined"
    reply = _last_turn(page).locator(".reply")
    await expect(reply.locator("img, script, iframe, object, embed, b")).to_have_count(0)
    text = await reply.text_content() or ""
    assert img in text
    assert script in text
    assert "[bad](javascript:window.__xss=3)" in text
    await expect(page.get_by_text(img, exact=False)).to_be_visible()
    await expect(reply.locator("strong")).to_have_text("bold")
    await expect(reply.locator("em")).to_have_text("it")
    await expect(reply.locator("p code")).to_have_text("<b>code</b>")
    await expect(reply.locator("pre code")).to_contain_text("<iframe srcdoc=")
    links = reply.locator("a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://example.com/docs")
    await expect(links).to_have_attribute("rel", "noopener noreferrer")


async def test_errors_are_shown_plainly(harness: Harness, page: Page) -> None:
    requests_before = len(harness.fake.requests)
    await _sign_in(page, "not-the-key")
    await _send(page, "hello?")
    error = page.locator("#error")
    await expect(error).to_be_visible()
    await expect(error).to_have_text(
        "Unauthorized (401): the x-api-key header does not match a known key"
    )
    await _wait_finished(page, "error")
    assert len(harness.fake.requests) == requests_before

    harness.fake.enqueue(
        Script(tokens=["Partial"], in_band_error={"code": 502, "message": "Provider exploded"})
    )
    await _sign_in(page)
    await _send(page, "again")
    await _wait_finished(page, "error")
    await expect(_last_turn(page).locator(".reply")).to_have_text("Partial")
    await expect(error).to_contain_text("Provider exploded")  # the `event: error` data, as sent


# Builds a stream covering every line ending, comments, multi-line data and multi-byte text,
# then reads it through readEventBatches split at every byte position (UTF-8 sequences too).
PARSER_CHECK = """async () => {
  const { SSEParser, readEventBatches } = await import("/playground/assets/sse.js");
  const text = ": keep-alive\\r\\n\\r\\ndata: héllo 👋\\r\\rdata: two\\ndata: lines\\n\\n" +
    "data:  spaced\\n\\nevent: done\\r\\ndata: [DONE]\\r\\n\\r\\ndata: 世界\\n\\ndata: unfinished";
  const bytes = new TextEncoder().encode(text);
  const expected = JSON.stringify(new SSEParser().feed(text));
  const read = async (chunks) => {
    const body = new ReadableStream({
      start(controller) { chunks.forEach((c) => controller.enqueue(c)); controller.close(); },
    });
    const events = [];
    for await (const batch of readEventBatches(body)) events.push(...batch);
    return JSON.stringify(events);
  };
  const failures = [];
  for (let i = 0; i <= bytes.length; i++) {
    const got = await read([bytes.slice(0, i), bytes.slice(i)]);
    if (got !== expected) failures.push({ split: i, got });
  }
  const oneByOne = await read(Array.from(bytes, (b) => new Uint8Array([b])));
  if (oneByOne !== expected) failures.push({ split: "bytes", got: oneByOne });
  return { expected: JSON.parse(expected), failures };
}"""

MARKDOWN_CHECK = """async (cases) => {
  const { renderMarkdown } = await import("/playground/assets/markdown.js");
  return cases.map((source) => {
    const box = document.createElement("div");
    box.append(renderMarkdown(source));
    return box.innerHTML;
  });
}"""

MARKDOWN_CASES: list[tuple[str, str]] = [
    ("one\ntwo\n\nthree", "<p>one<br>two</p><p>three</p>"),
    (
        "**b** and *i* and _u_ and snake_case_name",
        "<p><strong>b</strong> and <em>i</em> and <em>u</em> and snake_case_name</p>",
    ),
    ("- a\n- b\n  - nested", "<ul><li>a</li><li><p>b</p><ul><li>nested</li></ul></li></ul>"),
    ("3. c\n4. d", '<ol start="3"><li>c</li><li>d</li></ol>'),
    (
        "```js\nlet a = 1 < 2;\n",  # still streaming: no closing fence yet
        '<pre data-language="js"><code class="language-js">let a = 1 &lt; 2;\n</code></pre>',
    ),
    ("[x](ftp://example.com) [y](/relative)", "<p>[x](ftp://example.com) [y](/relative)</p>"),
    ("\\*not italic\\* `a*b*c`", "<p>*not italic* <code>a*b*c</code></p>"),
    ("**unclosed bold", "<p>**unclosed bold</p>"),
    ("***both***", "<p><strong><em>both</em></strong></p>"),
    (
        "[wiki](https://en.wikipedia.org/wiki/C_(language))",
        '<p><a href="https://en.wikipedia.org/wiki/C_(language)" rel="noopener noreferrer" '
        'target="_blank">wiki</a></p>',
    ),
    ("> quoted\n\n# Title", "<blockquote><p>quoted</p></blockquote><h3>Title</h3>"),
]


async def test_the_sse_parser_and_markdown_renderer_in_the_browser(page: Page) -> None:
    parsed: dict[str, Any] = await page.evaluate(PARSER_CHECK)
    assert parsed["failures"] == []
    assert parsed["expected"] == [
        {"event": "message", "data": "héllo 👋", "id": ""},
        {"event": "message", "data": "two\nlines", "id": ""},
        {"event": "message", "data": " spaced", "id": ""},
        {"event": "done", "data": "[DONE]", "id": ""},
        {"event": "message", "data": "世界", "id": ""},
    ]

    rendered = await page.evaluate(MARKDOWN_CHECK, [source for source, _ in MARKDOWN_CASES])
    expected = [html for _, html in MARKDOWN_CASES]
    assert rendered == expected, json.dumps(rendered, indent=1)
