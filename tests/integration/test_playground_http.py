"""The playground's HTTP side, without a browser: headers, files, config, and when it is off."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from aura_agent.http.ops.playground import CONTENT_SECURITY_POLICY
from tests.conftest import AppFactory
from tests.support import API_KEY, OPENROUTER_KEY, OPENROUTER_URL, make_settings

PAGE_FILES = ("/playground", "/playground/config", "/playground/assets/app.js")


def _directives(policy: str) -> dict[str, str]:
    return {
        name: value.strip()
        for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))
    }


async def test_the_page_is_served_with_a_strict_policy(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app()) as client:
        response = await client.get("/playground")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_page_has_no_inline_script_or_style(build_app: AppFactory) -> None:
    """The policy forbids inline code, so the page must not rely on any."""
    async with AsyncTestClient(app=build_app()) as client:
        html = (await client.get("/playground")).text
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.DOTALL | re.I)
    assert scripts, "the page loads its module"
    assert all(body.strip() == "" for body in scripts)
    assert re.search(r"<style\b", html, flags=re.I) is None
    assert re.search(r"\sstyle\s*=", html, flags=re.I) is None
    assert re.search(r"\son[a-z]+\s*=", html, flags=re.I) is None
    assert "localStorage" not in html


async def test_assets_have_their_types_and_only_packaged_files_are_served(
    build_app: AppFactory,
) -> None:
    async with AsyncTestClient(app=build_app()) as client:
        script = await client.get("/playground/assets/app.js")
        style = await client.get("/playground/assets/style.css")
        missing = await client.get("/playground/assets/missing.js")
        html_as_asset = await client.get("/playground/assets/index.html")
        outside = await client.get("/playground/assets/..%2F..%2Fconfig.py")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "import" in script.text
    assert style.headers["content-type"].startswith("text/css")
    for response in (missing, html_as_asset, outside):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_javascript_keeps_the_key_out_of_persistent_storage(
    build_app: AppFactory,
) -> None:
    async with AsyncTestClient(app=build_app()) as client:
        sources = [
            (await client.get(f"/playground/assets/{name}")).text
            for name in ("app.js", "markdown.js", "sse.js")
        ]
    code = "\n".join(sources)
    assert "sessionStorage" in code
    assert "localStorage" not in code
    assert "document.cookie" not in code
    assert "innerHTML" not in code
    assert "insertAdjacentHTML" not in code
    assert "eval(" not in code


async def test_config_lists_route_names_and_no_secret(build_app: AppFactory) -> None:
    app = build_app(
        model_name="deepseek/deepseek-chat", allowed_models="deepseek/deepseek-chat,openai/gpt-4o"
    )
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/playground/config")  # no x-api-key: the page has none yet
    assert response.status_code == 200
    body = response.json()
    assert body["models"] == ["deepseek/deepseek-chat", "openai/gpt-4o"]
    assert body["default_model"] == "deepseek/deepseek-chat"
    assert set(body) == {"models", "default_model", "version"}
    for secret in (API_KEY, OPENROUTER_KEY, OPENROUTER_URL, "openrouter.test"):
        assert secret not in response.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"playground_enabled": "false"},
        {"aura_env": "production"},
    ],
    ids=["disabled", "production-default"],
)
async def test_the_playground_is_404_when_off(
    build_app: AppFactory, overrides: dict[str, str]
) -> None:
    async with AsyncTestClient(app=build_app(**overrides)) as client:
        responses = [await client.get(path) for path in PAGE_FILES]
        health = await client.get("/health")
    assert [response.status_code for response in responses] == [404, 404, 404]
    assert health.status_code == 200


async def test_production_serves_the_playground_when_asked(build_app: AppFactory) -> None:
    app = build_app(aura_env="production", playground_enabled="true")
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/playground")).status_code == 200


def test_the_default_follows_the_environment() -> None:
    assert make_settings().serves_playground
    assert make_settings(aura_env="development").serves_playground
    assert not make_settings(aura_env="production").serves_playground
    assert not make_settings(playground_enabled="0").serves_playground
    assert make_settings(aura_env="production", playground_enabled="1").serves_playground
