"""`load_settings`: `.env` overlaid by the environment, decoded into `Settings`, checked, and the
model routes resolved, so the rest of the service only ever sees a valid configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args, get_origin

import msgspec

from aura_agent.config.checks import validate
from aura_agent.config.dotenv import parse_dotenv
from aura_agent.config.providers import PROVIDER_NAMES, PROVIDERS, ProviderSpec, provider_spec
from aura_agent.config.routes import RouteError, RouteTable, load_models_file, simple_routes
from aura_agent.config.settings import DERIVED_FIELDS, ConfigError, Settings
from aura_agent.msgspec_errors import locate

__all__ = ["load_settings"]

_LIST_FIELDS = {"ALLOWED_MODELS", "CORS_ORIGINS"}
_FIELD_NAMES = {field.encode_name for field in msgspec.structs.fields(Settings)} - DERIVED_FIELDS


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
    spec = _simple_provider(settings.llm_provider, merged)
    settings = msgspec.structs.replace(settings, resolved_provider=spec.name)
    validate(settings, spec, merged)
    try:
        routes = _routes_for(settings, spec, merged)
    except RouteError as exc:
        raise ConfigError(str(exc)) from None
    return msgspec.structs.replace(settings, model_routes=routes)


def _simple_provider(name: str, environ: Mapping[str, str]) -> ProviderSpec:
    """LLM_PROVIDER's row; for `auto`, the first row whose key variable is set, else the demo."""
    if name == "auto":
        for spec in PROVIDERS:
            if spec.key_variable and (environ.get(spec.key_variable) or "").strip():
                return spec
        return provider_spec("demo")
    if name not in PROVIDER_NAMES:
        accepted = ", ".join(("auto", *PROVIDER_NAMES))
        raise ConfigError(f"invalid LLM_PROVIDER: {name[:40]!r} (accepts: {accepted})")
    return provider_spec(name)


def _routes_for(settings: Settings, spec: ProviderSpec, environ: Mapping[str, str]) -> RouteTable:
    if settings.models_file:
        return load_models_file(settings.models_file, environ)
    return simple_routes(
        spec=spec,
        model_name=settings.default_model_name,
        allowed_models=settings.allowed_models,
        environ=environ,
    )


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
    location = locate(exc)
    if not location.path:
        return f"invalid configuration: {location.reason}"
    name = location.path
    problem = f"invalid {name}: {location.reason.rstrip(' -')}"
    if accepted := _accepted_values(name):
        problem += f" (accepts: {', '.join(accepted)})"
    return problem
