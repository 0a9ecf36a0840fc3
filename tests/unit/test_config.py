"""Configuration: seed variable names, defaults, and startup errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura_agent.config import ConfigError, load_settings, parse_dotenv


def test_no_environment_gives_a_runnable_development_setup() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.resolved_provider == "demo"
    assert settings.session_store == "memory"
    assert settings.internal_api_key is None
    assert settings.default_model_name == "aura/offline-demo"
    assert settings.model_temperature == 0.2
    assert settings.model_max_tokens == 2000


def test_an_openrouter_key_selects_openrouter() -> None:
    settings = load_settings({"OPENROUTER_API_KEY": "sk-or-1"}, env_file=None)
    assert settings.resolved_provider == "openrouter"
    assert settings.default_model_name == "deepseek/deepseek-chat"


def test_seed_variables_are_read_with_types() -> None:
    settings = load_settings(
        {
            "MODEL_NAME": "openai/gpt-4o-mini",
            "MODEL_TEMPERATURE": "0.7",
            "MODEL_MAX_TOKENS": "512",
            "OPENROUTER_API_URL": "http://127.0.0.1:9/api/v1/chat/completions",
            "CORS_ORIGINS": "http://a.example, http://b.example",
            "LOG_LEVEL": "DEBUG",
            "ALLOWED_MODELS": "openai/gpt-4o-mini,anthropic/claude-3.5-haiku",
        },
        env_file=None,
    )
    assert settings.model_name == "openai/gpt-4o-mini"
    assert settings.model_temperature == 0.7
    assert settings.model_max_tokens == 512
    assert settings.cors_origins == ("http://a.example", "http://b.example")
    assert settings.model_allow_list == ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"MODEL_TEMPERATURE": "3"}, "MODEL_TEMPERATURE"),
        ({"MODEL_TEMPERATURE": "warm"}, "MODEL_TEMPERATURE"),
        ({"PORT": "eighty"}, "PORT"),
        ({"LLM_PROVIDER": "skynet"}, "accepts: auto, openrouter, openai, anthropic, demo"),
        ({"SESSION_STORE": "disk"}, "SESSION_STORE"),
        # the aiohttp transport was removed: a leftover setting fails at startup, not silently
        (
            {"UPSTREAM_TRANSPORT": "aiohttp"},
            r"UPSTREAM_TRANSPORT.*'aiohttp' \(accepts: asyncio, httpx\)",
        ),
        ({"AURA_ENV": "production", "OPENROUTER_API_KEY": "k"}, "INTERNAL_API_KEY"),
        ({"AURA_ENV": "production", "INTERNAL_API_KEY": "k"}, "OPENROUTER_API_KEY"),
        ({"LLM_PROVIDER": "openrouter"}, "OPENROUTER_API_KEY"),
        ({"MODEL_MAX_TOKENS": "99999"}, "MODEL_MAX_TOKENS"),
        ({"ALLOWED_MODELS": "x/y"}, "ALLOWED_MODELS"),
        ({"OPENROUTER_API_URL": "ftp://example"}, "OPENROUTER_API_URL"),
        ({"KEEPALIVE_SECONDS": "0"}, "KEEPALIVE_SECONDS"),
    ],
)
def test_invalid_values_name_the_variable(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(environ, env_file=None)


def test_production_with_both_keys_is_valid() -> None:
    settings = load_settings(
        {"AURA_ENV": "production", "INTERNAL_API_KEY": "a", "OPENROUTER_API_KEY": "b"},
        env_file=None,
    )
    assert settings.is_production
    assert settings.resolved_provider == "openrouter"


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nexport MODEL_NAME='from/dotenv'\nMODEL_MAX_TOKENS=100 # inline\n"
        'LOG_LEVEL="WARNING"\nEMPTY=\n',
        encoding="utf-8",
    )
    settings = load_settings({"LOG_LEVEL": "ERROR"}, env_file=env_file)
    assert settings.model_name == "from/dotenv"
    assert settings.model_max_tokens == 100
    assert settings.log_level == "ERROR"


def test_empty_values_mean_unset() -> None:
    settings = load_settings({"OPENROUTER_API_KEY": "", "MODEL_NAME": " "}, env_file=None)
    assert settings.resolved_provider == "demo"  # an empty key selects nothing
    assert settings.routes.secrets == ()
    assert settings.model_name is None


def test_parse_dotenv_keeps_hashes_inside_quotes() -> None:
    assert parse_dotenv('A="x # y"\nB=plain\nnot a pair\n') == {"A": "x # y", "B": "plain"}
