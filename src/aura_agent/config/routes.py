"""Named model routes: which provider, vendor model, endpoint and key serve a model name.

Two ways to configure them:

* simple: `LLM_PROVIDER` + the provider's key (`OPENROUTER_API_KEY`, `OPENAI_API_KEY`, ...:
  the `key_variable` of its row in `providers`) + `MODEL_NAME`; every name in `ALLOWED_MODELS`
  becomes a route on the same provider;
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
from typing import Annotated, Any

import msgspec

from aura_agent.config.providers import PROVIDER_NAMES, ProviderSpec, provider_spec
from aura_agent.msgspec_errors import locate

_ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")


class RouteError(ValueError):
    """A route definition is invalid; the message names the entry."""


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """One resolved route: everything needed to build its adapter."""

    name: str
    provider: str  # a name from `providers.PROVIDERS`
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
    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    fallbacks: list[str] = []
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None


class _ModelsFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    default: str | None = None
    routes: dict[str, dict[str, Any]]


def check_url(where: str, url: str) -> None:
    """Refuse anything but an http(s) URL; `where` names the setting or entry."""
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
        entry = msgspec.convert(raw_entry, _RouteEntry)
    except msgspec.ValidationError as exc:
        where = _path_message(exc)
        separator = "." if re.match(r"^\w+: ", where) else ": "
        raise RouteError(f"invalid {label}: routes.{name}{separator}{where}") from None
    if entry.provider not in PROVIDER_NAMES:
        raise RouteError(
            f"invalid {label}: routes.{name}.provider: {entry.provider[:40]!r} is not a known "
            f"provider (accepts: {', '.join(PROVIDER_NAMES)})"
        )
    return entry


def _path_message(exc: msgspec.ValidationError) -> str:
    location = locate(exc)
    return f"{location.path}: {location.reason}" if location.path else location.reason


def _resolve(where: str, name: str, entry: _RouteEntry, environ: Mapping[str, str]) -> Route:
    if not _ROUTE_NAME.match(name):
        raise RouteError(f"{where}: a route name is 1-128 characters of letters, digits, ._:/@-")
    spec = provider_spec(entry.provider)
    url = spec.endpoint(entry.base_url or spec.base_url)
    if spec.family != "demo":
        check_url(f"{where}.base_url", url)
    key_variable = entry.api_key_env if entry.api_key_env is not None else spec.key_variable
    api_key = (environ.get(key_variable) or "").strip() or None if key_variable else None
    if key_variable and api_key is None:
        hint = "" if spec.key_required else ' (a local server without a key: api_key_env = "")'
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
    spec: ProviderSpec,
    model_name: str,
    allowed_models: tuple[str, ...],
    environ: Mapping[str, str],
) -> RouteTable:
    """The routes of the simple configuration: one per allowed model, all on one provider, whose
    key and URL come from the variables its row names."""
    override = environ.get(spec.url_variable, "").strip() if spec.url_variable else ""
    if spec.url_variable_is_endpoint:
        url = override or spec.default_url
    else:
        url = spec.endpoint(override or spec.base_url)
    api_key = (environ.get(spec.key_variable) or "").strip() or None if spec.key_variable else None
    names = (model_name, *(name for name in allowed_models if name != model_name))
    routes = tuple(
        Route(name=name, provider=spec.name, model=name, url=url, api_key=api_key) for name in names
    )
    return RouteTable(routes=routes, default=model_name)
