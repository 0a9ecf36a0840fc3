"""`Settings`: every setting of the service, as one frozen Struct.

Field names are the environment variable names (`rename="upper"`), so a validation error such as
"Expected `float` <= 2.0 - at `$.MODEL_TEMPERATURE`" names exactly what to fix. A provider's own
variables (its key, its URL) are not fields: they are named by its row in `providers` and read
into the routes by `load_settings`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from aura_agent.api_keys import ApiKeyError, ApiKeyTable, load_api_keys
from aura_agent.config.providers import provider_spec
from aura_agent.config.routes import RouteTable

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the variable and what it accepts."""


class Settings(msgspec.Struct, kw_only=True, frozen=True, rename="upper"):
    """Every setting of the service. See `.env.example` for what each one means."""

    aura_env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["auto", "console", "json"] = "auto"

    # Which provider serves requests (a name from `providers.PROVIDERS`). `auto` picks the first
    # provider whose key variable is set, else the demo.
    llm_provider: str = "auto"
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

    # OpenRouter's attribution headers (its key and URL are provider variables, see above).
    openrouter_referer: str | None = None
    openrouter_title: str | None = None

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
    # HTTP/1.1, no proxies) or httpx's own (httpcore; honours HTTP(S)_PROXY): docs/transports.md
    upstream_transport: Literal["asyncio", "httpx"] = "asyncio"

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

    # Resolved by `load_settings` from the settings above and the provider variables (never
    # read from the environment themselves).
    model_routes: RouteTable | None = None
    resolved_provider: str = "demo"
    """The provider of the simple configuration, once `auto` is decided."""

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
    def default_model_name(self) -> str:
        """MODEL_NAME, or the provider's usual model when it is not set."""
        return self.model_name or provider_spec(self.resolved_provider).default_model

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


DERIVED_FIELDS = frozenset({"MODEL_ROUTES", "RESOLVED_PROVIDER"})
"""Fields `load_settings` fills in; an environment variable of that name is ignored."""
