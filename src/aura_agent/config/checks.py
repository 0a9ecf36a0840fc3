"""The rules that span several settings, checked once at startup; each error names the variable."""

from __future__ import annotations

from collections.abc import Mapping

from aura_agent.config.providers import PROVIDERS, ProviderSpec
from aura_agent.config.routes import RouteError, check_url
from aura_agent.config.settings import ConfigError, Settings

__all__ = ["validate"]


def validate(settings: Settings, spec: ProviderSpec, environ: Mapping[str, str]) -> None:
    """Check `settings` with `spec`, the provider of the simple configuration, whose variables
    are read from `environ`; raise `ConfigError` naming the variable."""
    if settings.has_api_keys and len(settings.api_key_table()) == 0:
        raise ConfigError("invalid INTERNAL_API_KEYS / API_KEYS_FILE: they hold no key")
    if settings.is_production:
        if not settings.has_api_keys:
            raise ConfigError(
                "INTERNAL_API_KEY (or INTERNAL_API_KEYS, or API_KEYS_FILE) is required when "
                "AURA_ENV=production"
            )
        if spec.family == "demo" and not settings.models_file:
            raise ConfigError(
                "OPENROUTER_API_KEY is required when AURA_ENV=production "
                "(the offline demo model is for development only)"
            )
    if not settings.models_file and spec.key_required and not _value(environ, spec.key_variable):
        raise ConfigError(f"{spec.key_variable} is required when LLM_PROVIDER={spec.name}")
    for each in PROVIDERS:  # a typo in any provider's URL fails now, not when it is used
        if each.url_variable and (url := _value(environ, each.url_variable)):
            try:
                check_url(f"invalid {each.url_variable}", url)
            except RouteError as exc:
                raise ConfigError(str(exc)) from None
    if settings.model_max_tokens > settings.max_tokens_limit:
        raise ConfigError(
            f"invalid MODEL_MAX_TOKENS: {settings.model_max_tokens} is above "
            f"MAX_TOKENS_LIMIT ({settings.max_tokens_limit})"
        )
    if settings.allowed_models and settings.default_model_name not in settings.allowed_models:
        raise ConfigError(
            f"invalid ALLOWED_MODELS: it must include MODEL_NAME ({settings.default_model_name})"
        )


def _value(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name) or "").strip()
