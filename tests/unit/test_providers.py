"""The provider table: rows that the settings, routes and container can rely on."""

from __future__ import annotations

from aura_agent.config.providers import PROVIDER_NAMES, PROVIDERS, provider_spec


def test_names_are_unique_and_auto_is_not_one() -> None:
    assert len(set(PROVIDER_NAMES)) == len(PROVIDERS)
    assert "auto" not in PROVIDER_NAMES


def test_every_network_provider_has_an_http_endpoint_and_a_key_variable() -> None:
    for spec in PROVIDERS:
        if spec.family == "demo":
            assert spec.default_url == ""
            continue
        assert spec.default_url.startswith("https://"), spec.name
        assert spec.key_variable.endswith("_API_KEY"), spec.name
        assert spec.url_variable, spec.name


def test_an_endpoint_is_the_base_url_and_the_path() -> None:
    anthropic = provider_spec("anthropic")
    assert anthropic.endpoint("http://127.0.0.1:9/") == "http://127.0.0.1:9/v1/messages"
    assert provider_spec("groq").default_url == "https://api.groq.com/openai/v1/chat/completions"
