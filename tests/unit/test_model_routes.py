"""Model routes: the simple environment form and the models file, with errors naming the entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aura_agent.config import ConfigError, load_settings

MODELS_TOML = """
default = "smart"

[routes.smart]
provider = "openrouter"
model = "anthropic/claude-3.5-sonnet"
fallbacks = ["direct", "local"]
max_retries = 2

[routes.direct]
provider = "anthropic"
model = "claude-3-5-haiku-latest"

[routes.local]
provider = "openai"
model = "llama3.2"
base_url = "http://127.0.0.1:11434/v1"
api_key_env = ""
"""

KEYS = {"OPENROUTER_API_KEY": "sk-or-1", "ANTHROPIC_API_KEY": "sk-ant-1"}


def _write(tmp_path: Path, text: str, name: str = "models.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_simple_form_is_one_route_per_allowed_model() -> None:
    settings = load_settings(
        {"OPENROUTER_API_KEY": "k", "ALLOWED_MODELS": "deepseek/deepseek-chat,openai/gpt-4o"},
        env_file=None,
    )
    table = settings.routes
    assert table.default == "deepseek/deepseek-chat"
    assert table.names == ("deepseek/deepseek-chat", "openai/gpt-4o")
    route = table.get("openai/gpt-4o")
    assert (route.provider, route.model, route.api_key) == ("openrouter", "openai/gpt-4o", "k")
    assert route.url == "https://openrouter.ai/api/v1/chat/completions"


@pytest.mark.parametrize(
    ("environ", "provider", "url", "model"),
    [
        (
            {"OPENROUTER_API_KEY": "k"},
            "openrouter",
            "https://openrouter.ai/api/v1/chat/completions",
            "deepseek/deepseek-chat",
        ),
        (
            {"OPENAI_API_KEY": "k"},
            "openai",
            "https://api.openai.com/v1/chat/completions",
            "gpt-4o-mini",
        ),
        (
            {"ANTHROPIC_API_KEY": "k"},
            "anthropic",
            "https://api.anthropic.com/v1/messages",
            "claude-3-5-haiku-latest",
        ),
        (
            {
                "LLM_PROVIDER": "openai",
                "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
                "MODEL_NAME": "llama3.2",
            },
            "openai",
            "http://127.0.0.1:11434/v1/chat/completions",
            "llama3.2",
        ),
        ({}, "demo", "", "aura/offline-demo"),
    ],
)
def test_switching_provider_is_a_change_of_environment(
    environ: dict[str, str], provider: str, url: str, model: str
) -> None:
    table = load_settings(environ, env_file=None).routes
    route = table.get(table.default)
    assert (route.provider, route.url, route.model) == (provider, url, model)


def test_the_models_file_defines_routes_with_fallbacks(tmp_path: Path) -> None:
    settings = load_settings({"MODELS_FILE": _write(tmp_path, MODELS_TOML), **KEYS}, env_file=None)
    table = settings.routes
    assert table.default == "smart"
    smart = table.get("smart")
    assert smart.fallbacks == ("direct", "local")
    assert smart.max_retries == 2
    assert smart.api_key == "sk-or-1"
    direct = table.get("direct")
    assert (direct.url, direct.api_key) == ("https://api.anthropic.com/v1/messages", "sk-ant-1")
    local = table.get("local")
    assert (local.url, local.api_key) == ("http://127.0.0.1:11434/v1/chat/completions", None)
    assert settings.model_allow_list == ("smart", "direct", "local")
    assert set(table.secrets) == {"sk-or-1", "sk-ant-1"}


def test_a_json_models_file_works_too(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        json.dumps({"routes": {"only": {"provider": "demo", "model": "aura/offline-demo"}}}),
        "models.json",
    )
    table = load_settings({"MODELS_FILE": path}, env_file=None).routes
    assert table.default == "only"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MODELS_TOML.replace('provider = "anthropic"', 'provider = "skynet"'),
            "routes.direct.provider",
        ),
        (
            MODELS_TOML.replace('fallbacks = ["direct", "local"]', 'fallbacks = ["nowhere"]'),
            "routes.smart.fallbacks names 'nowhere'",
        ),
        (
            MODELS_TOML.replace('fallbacks = ["direct", "local"]', 'fallbacks = ["smart"]'),
            "routes.smart.fallbacks names the route itself",
        ),
        (MODELS_TOML.replace('default = "smart"', 'default = "missing"'), "'missing'"),
        (MODELS_TOML.replace("max_retries = 2", "max_retry = 2"), "max_retry"),
        (
            MODELS_TOML.replace('base_url = "http://127.0.0.1:11434/v1"', 'base_url = "file:///x"'),
            "routes.local.base_url",
        ),
        (
            MODELS_TOML.replace('api_key_env = ""', 'api_key_env = "LOCAL_KEY"'),
            "routes.local: its key variable LOCAL_KEY is not set",
        ),
        ("routes = {}", "defines no routes"),
        ("this is [not toml", "MODELS_FILE"),
    ],
)
def test_models_file_errors_name_the_entry(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match="MODELS_FILE") as caught:
        load_settings({"MODELS_FILE": _write(tmp_path, text), **KEYS}, env_file=None)
    assert expected in str(caught.value)


def test_a_missing_key_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set"):
        load_settings(
            {"MODELS_FILE": _write(tmp_path, MODELS_TOML), "OPENROUTER_API_KEY": "k"},
            env_file=None,
        )


def test_a_missing_models_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"MODELS_FILE": str(tmp_path / "absent.toml")}, env_file=None)


def test_keys_for_the_models_file_may_come_from_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ANTHROPIC_API_KEY=from-dotenv\n", encoding="utf-8")
    settings = load_settings(
        {"MODELS_FILE": _write(tmp_path, MODELS_TOML), "OPENROUTER_API_KEY": "k"},
        env_file=env_file,
    )
    assert settings.routes.get("direct").api_key == "from-dotenv"
