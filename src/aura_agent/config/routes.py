"""Named model routes: which provider, vendor model, endpoint and key serve a model name.

Two ways to configure them:

* simple: `LLM_PROVIDER` + the provider's key (`OPENROUTER_API_KEY`, `OPENAI_API_KEY`,
  `ANTHROPIC_API_KEY`) + `MODEL_NAME`; every name in `ALLOWED_MODELS` becomes a route on the
  same provider;
* full: a TOML or JSON file named by `MODELS_FILE`, with fallbacks and retries per route.

Keys never live in the file: a route names the environment variable that holds its key, so the
file can be committed. Endpoints come only from configuration, so a client can pick a route by
name but can never make the service call a URL of its choosing.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

Provider = Literal["openrouter", "openai", "anthropic", "demo"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "openrouter": "https://openrouter.ai/api/v1",
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "demo": "",
}
DEFAULT_KEY_VARIABLES: dict[str, str] = {
    "openrouter": "OPENROUTER_API_KEY",
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "demo": "",
}
DEFAULT_MODELS: dict[str, str] = {
    "openrouter": "deepseek/deepseek-chat",
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "demo": "aura/offline-demo",
}

_ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")


class RouteError(ValueError):
    """A route definition is invalid; the message names the entry."""


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """One resolved route: everything needed to build its adapter."""

    name: str
    provider: Provider
    model: str
    url: str
    api_key: str | None = None
    fallbacks: tuple[str, ...] = ()
    max_retries: int | None = None


class RouteTable(msgspec.Struct, frozen=True, kw_only=True):
    """All routes and the one used when a request names no model."""

    routes: tuple[Route, ...]
    default: str

    @property
    def names(self) -> tuple[str, ...]:
        """Route names in configuration order; what a request may put in `model`."""
        return tuple(route.name for route in self.routes)

    def get(self, name: str) -> Route:
        """The route called `name`."""
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every key held, so logging can redact them."""
        return tuple(route.api_key for route in self.routes if route.api_key)


class _RouteEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: Provider
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    fallbacks: list[str] = []
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None


class _ModelsFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    default: str | None = None
    routes: dict[str, dict[str, Any]]


def endpoint_url(provider: str, base_url: str) -> str:
    """The streaming endpoint of a provider under its base URL."""
    base = base_url.rstrip("/")
    if provider == "anthropic":
        return base + "/v1/messages"
    if provider == "demo":
        return ""
    return base + "/chat/completions"


def _check_url(where: str, url: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise RouteError(f"{where}: expected an http:// or https:// URL")


def load_models_file(path: str | Path, environ: Mapping[str, str]) -> RouteTable:
    """Read and validate a TOML (`.toml`) or JSON models file; keys come from `environ`."""
    file = Path(path)
    label = f"MODELS_FILE ({file})"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RouteError(f"invalid {label}: cannot read it ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise RouteError(f"invalid {label}: {exc}") from None
    try:
        parsed = msgspec.convert(raw, _ModelsFile)
    except msgspec.ValidationError as exc:
        raise RouteError(f"invalid {label}: {_path_message(exc)}") from None
    if not parsed.routes:
        raise RouteError(f"invalid {label}: it defines no routes")
    routes = tuple(
        _resolve(f"invalid {label}: routes.{name}", name, _entry(label, name, raw_entry), environ)
        for name, raw_entry in parsed.routes.items()
    )
    default = parsed.default or routes[0].name
    return _validated(label, routes, default)


def _entry(label: str, name: str, raw_entry: dict[str, Any]) -> _RouteEntry:
    try:
        return msgspec.convert(raw_entry, _RouteEntry)
    except msgspec.ValidationError as exc:
        where = _path_message(exc)
        separator = "." if re.match(r"^\w+: ", where) else ": "
        raise RouteError(f"invalid {label}: routes.{name}{separator}{where}") from None


def _path_message(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    match = re.search(r" - at `\$\.?([^`]*)`$", text)
    if not match:
        return text
    return f"{match.group(1)}: {text[: match.start()]}"


def _resolve(where: str, name: str, entry: _RouteEntry, environ: Mapping[str, str]) -> Route:
    if not _ROUTE_NAME.match(name):
        raise RouteError(f"{where}: a route name is 1-128 characters of letters, digits, ._:/@-")
    base_url = entry.base_url or DEFAULT_BASE_URLS[entry.provider]
    url = endpoint_url(entry.provider, base_url)
    if entry.provider != "demo":
        _check_url(f"{where}.base_url", url)
    key_variable = (
        entry.api_key_env
        if entry.api_key_env is not None
        else DEFAULT_KEY_VARIABLES[entry.provider]
    )
    api_key = (environ.get(key_variable) or "").strip() or None if key_variable else None
    if key_variable and api_key is None:
        hint = (
            ' (a local server without a key: api_key_env = "")'
            if entry.provider == "openai"
            else ""
        )
        raise RouteError(f"{where}: its key variable {key_variable} is not set{hint}")
    return Route(
        name=name,
        provider=entry.provider,
        model=entry.model,
        url=url,
        api_key=api_key,
        fallbacks=tuple(entry.fallbacks),
        max_retries=entry.max_retries,
    )


def _validated(label: str, routes: tuple[Route, ...], default: str) -> RouteTable:
    names = {route.name for route in routes}
    if default not in names:
        raise RouteError(f"invalid {label}: default route {default!r} is not defined")
    for route in routes:
        for fallback in route.fallbacks:
            if fallback not in names:
                raise RouteError(
                    f"invalid {label}: routes.{route.name}.fallbacks names {fallback!r}, "
                    "which is not defined"
                )
            if fallback == route.name:
                raise RouteError(
                    f"invalid {label}: routes.{route.name}.fallbacks names the route itself"
                )
    return RouteTable(routes=routes, default=default)


def simple_routes(
    *,
    provider: Provider,
    model_name: str,
    allowed_models: tuple[str, ...],
    url: str,
    api_key: str | None,
) -> RouteTable:
    """The routes of the simple configuration: one per allowed model, all on one provider."""
    names = (model_name, *(name for name in allowed_models if name != model_name))
    routes = tuple(
        Route(name=name, provider=provider, model=name, url=url, api_key=api_key) for name in names
    )
    return RouteTable(routes=routes, default=model_name)
