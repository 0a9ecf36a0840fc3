"""Settings from the environment (and an optional `.env`), validated once at startup.

Field names are the environment variable names, so a validation error such as
"Expected `float` <= 2.0 - at `$.MODEL_TEMPERATURE`" names exactly what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

import msgspec

from aura_agent.api_keys import ApiKeyError, ApiKeyTable, load_api_keys
from aura_agent.model_routes import (
    DEFAULT_BASE_URLS,
    DEFAULT_MODELS,
    Provider,
    RouteError,
    RouteTable,
    endpoint_url,
    load_models_file,
    simple_routes,
)

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]

DEFAULT_OPENROUTER_URL = "https://openrouter.ai/api/v1/chat/completions"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the variable and what it accepts."""


class Settings(msgspec.Struct, kw_only=True, frozen=True, rename="upper"):
    """Every setting of the service. See `.env.example` for what each one means."""

    aura_env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["auto", "console", "json"] = "auto"

    # Which adapters serve requests. `auto` picks the first provider with a key, else the demo.
    llm_provider: Literal["auto", "openrouter", "openai", "anthropic", "demo"] = "auto"
    session_store: Literal["memory", "redis"] = "memory"

    # Authentication of callers: the seed's single key (tenant "default"), `name:key` pairs,
    # and/or a file of `name = key` / `name = sha256:<hex>` lines. Each name is a tenant.
    internal_api_key: str | None = None
    internal_api_keys: str | None = None
    api_keys_file: str | None = None

    # Per-tenant limits and the per-instance stream cap; 0 turns each off.
    rate_limit_per_minute: NonNegativeInt = 0
    max_streams_per_key: NonNegativeInt = 0
    max_concurrent_streams: NonNegativeInt = 0

    # OpenRouter, with the seed's names.
    openrouter_api_key: str | None = None
    openrouter_api_url: str = DEFAULT_OPENROUTER_URL
    openrouter_referer: str | None = None
    openrouter_title: str | None = None

    # Other providers (simple configuration).
    openai_api_key: str | None = None
    openai_base_url: str = DEFAULT_BASE_URLS["openai"]
    anthropic_api_key: str | None = None
    anthropic_base_url: str = DEFAULT_BASE_URLS["anthropic"]

    # Full configuration: named routes with fallbacks, from a TOML or JSON file.
    models_file: str | None = None
    route_max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1
    retry_backoff_ms: Annotated[int, msgspec.Meta(ge=0)] = 250
    retry_budget_seconds: PositiveFloat = 20.0

    # The model and its defaults. MODEL_NAME defaults to a sensible model of the provider.
    model_name: str | None = None
    model_temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.2
    model_max_tokens: PositiveInt = 2000
    allowed_models: tuple[str, ...] = ()
    system_prompt: str | None = None

    # Request limits.
    max_message_chars: PositiveInt = 32_000
    max_tokens_limit: PositiveInt = 16_384
    max_body_bytes: PositiveInt = 262_144
    max_header_bytes: PositiveInt = 32_768
    history_token_budget: PositiveInt = 6_000

    # Streaming and upstream timeouts, in seconds.
    keepalive_seconds: PositiveFloat = 5.0
    upstream_connect_timeout: PositiveFloat = 10.0
    upstream_first_token_timeout: PositiveFloat = 60.0
    upstream_idle_timeout: PositiveFloat = 60.0
    upstream_total_timeout: PositiveFloat = 600.0
    # On SIGTERM: how long in-flight streams may run on before they are ended.
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    # What moves bytes under the httpx client: plain asyncio protocols with httptools (leanest;
    # HTTP/1.1, no proxies), aiohttp's pool, or httpx's own (httpcore; honours HTTP(S)_PROXY).
    upstream_transport: Literal["asyncio", "aiohttp", "httpx"] = "asyncio"

    # Session memory.
    session_max_messages: Annotated[int, msgspec.Meta(ge=2)] = 100
    session_ttl_seconds: PositiveInt = 86_400
    session_max_sessions: PositiveInt = 10_000

    # Redis session store.
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "aura:"
    redis_cluster: bool = False
    redis_socket_timeout: PositiveFloat = 2.0

    # Offline demo model: pause between its words, in milliseconds (0 streams at once).
    demo_token_delay_ms: Annotated[int, msgspec.Meta(ge=0)] = 25

    cors_origins: tuple[str, ...] = ("http://localhost:5173",)

    # The browser playground at /playground. None: on outside production, off in production.
    playground_enabled: bool | None = None

    # Prometheus metrics at /metrics; when METRICS_API_KEY is set, scrapers must send it.
    metrics_enabled: bool = True
    metrics_api_key: str | None = None

    # Resolved by `load_settings` from the settings above (never read from the environment).
    model_routes: RouteTable | None = None

    @property
    def is_production(self) -> bool:
        """Production forbids the conveniences of development (generated keys, demo fallback)."""
        return self.aura_env == "production"

    @property
    def has_api_keys(self) -> bool:
        """Whether any caller key is configured (else development generates one)."""
        return bool(self.internal_api_key or self.internal_api_keys or self.api_keys_file)

    def api_key_table(self) -> ApiKeyTable:
        """Every configured key by tenant; raises `ConfigError` naming the variable."""
        try:
            return load_api_keys(
                internal_api_key=self.internal_api_key,
                internal_api_keys=self.internal_api_keys,
                api_keys_file=self.api_keys_file,
            )
        except ApiKeyError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def serves_playground(self) -> bool:
        """PLAYGROUND_ENABLED, defaulting to off in production: a public deployment should not
        advertise a page for poking at the API unless an operator asks for it."""
        if self.playground_enabled is None:
            return not self.is_production
        return self.playground_enabled

    @property
    def resolved_provider(self) -> Provider:
        """The provider of the simple configuration once `auto` is decided."""
        if self.llm_provider != "auto":
            return self.llm_provider
        if self.openrouter_api_key:
            return "openrouter"
        if self.openai_api_key:
            return "openai"
        if self.anthropic_api_key:
            return "anthropic"
        return "demo"

    @property
    def default_model_name(self) -> str:
        """MODEL_NAME, or the provider's usual model when it is not set."""
        return self.model_name or DEFAULT_MODELS[self.resolved_provider]

    @property
    def routes(self) -> RouteTable:
        """The model routes; `load_settings` always resolves them."""
        if self.model_routes is None:
            raise ConfigError("model routes were not resolved; build Settings with load_settings")
        return self.model_routes

    @property
    def model_allow_list(self) -> tuple[str, ...]:
        """Model names a request may use: the configured routes."""
        return self.routes.names


_LIST_FIELDS = {"ALLOWED_MODELS", "CORS_ORIGINS"}
_DERIVED_FIELDS = {"MODEL_ROUTES"}
_FIELD_NAMES = {field.encode_name for field in msgspec.structs.fields(Settings)} - _DERIVED_FIELDS


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse the simple `.env` format: KEY=VALUE lines, `#` comments, optional quotes, `export`."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[key.strip()] = value
    return values


def _to_field_value(name: str, value: str) -> object:
    if name in _LIST_FIELDS:
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _accepted_values(name: str) -> tuple[str, ...]:
    for field in msgspec.structs.fields(Settings):
        if field.encode_name == name and get_origin(field.type) is Literal:
            return tuple(str(choice) for choice in get_args(field.type))
    return ()


def _problem_from(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    match = re.search(r"at `\$\.(\w+)`", text)
    if not match:
        return f"invalid configuration: {text}"
    name = match.group(1)
    problem = f"invalid {name}: {text[: match.start()].rstrip(' -')}"
    if accepted := _accepted_values(name):
        problem += f" (accepts: {', '.join(accepted)})"
    return problem


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Build `Settings` from `.env` (if present) overlaid by the process environment.

    Empty values count as unset, so `KEY=` in `.env` keeps the default. Raises `ConfigError`.
    """
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update(parse_dotenv(Path(env_file).read_text(encoding="utf-8")))
    merged.update(os.environ if environ is None else environ)
    raw = {
        name: _to_field_value(name, value)
        for name, value in merged.items()
        if name in _FIELD_NAMES and value.strip() != ""
    }
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_problem_from(exc)) from None
    validate(settings)
    try:
        routes = _routes_for(settings, merged)
    except RouteError as exc:
        raise ConfigError(str(exc)) from None
    return msgspec.structs.replace(settings, model_routes=routes)


def _routes_for(settings: Settings, environ: Mapping[str, str]) -> RouteTable:
    if settings.models_file:
        return load_models_file(settings.models_file, environ)
    provider = settings.resolved_provider
    urls = {
        "openrouter": settings.openrouter_api_url,
        "openai": endpoint_url("openai", settings.openai_base_url),
        "anthropic": endpoint_url("anthropic", settings.anthropic_base_url),
        "demo": "",
    }
    keys = {
        "openrouter": settings.openrouter_api_key,
        "openai": settings.openai_api_key,
        "anthropic": settings.anthropic_api_key,
        "demo": None,
    }
    return simple_routes(
        provider=provider,
        model_name=settings.default_model_name,
        allowed_models=settings.allowed_models,
        url=urls[provider],
        api_key=keys[provider],
    )


_KEY_OF_PROVIDER = {
    "openrouter": "OPENROUTER_API_KEY",
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}


def validate(settings: Settings) -> None:
    """Check the rules that span several settings; raise `ConfigError` naming the variable."""
    provider = settings.resolved_provider
    if settings.has_api_keys and len(settings.api_key_table()) == 0:
        raise ConfigError("invalid INTERNAL_API_KEYS / API_KEYS_FILE: they hold no key")
    if settings.is_production:
        if not settings.has_api_keys:
            raise ConfigError(
                "INTERNAL_API_KEY (or INTERNAL_API_KEYS, or API_KEYS_FILE) is required when "
                "AURA_ENV=production"
            )
        if provider == "demo" and not settings.models_file:
            raise ConfigError(
                "OPENROUTER_API_KEY is required when AURA_ENV=production "
                "(the offline demo model is for development only)"
            )
    if not settings.models_file and provider in ("openrouter", "anthropic"):
        key_variable = _KEY_OF_PROVIDER[provider]
        if not getattr(settings, key_variable.lower()):
            raise ConfigError(f"{key_variable} is required when LLM_PROVIDER={provider}")
    for name in ("OPENROUTER_API_URL", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        if not getattr(settings, name.lower()).startswith(("https://", "http://")):
            raise ConfigError(f"invalid {name}: expected an http:// or https:// URL")
    if settings.model_max_tokens > settings.max_tokens_limit:
        raise ConfigError(
            f"invalid MODEL_MAX_TOKENS: {settings.model_max_tokens} is above "
            f"MAX_TOKENS_LIMIT ({settings.max_tokens_limit})"
        )
    if settings.allowed_models and settings.default_model_name not in settings.allowed_models:
        raise ConfigError(
            f"invalid ALLOWED_MODELS: it must include MODEL_NAME ({settings.default_model_name})"
        )
