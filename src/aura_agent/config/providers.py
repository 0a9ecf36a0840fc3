"""The providers the service knows, one row each in `providers.toml`: everything that differs
between vendors of a wire protocol is data there, read by the settings, the routes, the container
and error messages, and checked against `ProviderSpec` when this module is imported.

A new vendor of a known protocol (an OpenAI-compatible API such as Groq or DeepSeek) is one row;
a new wire protocol is one adapter module under `adapters/llm/`, one `family` value and the
container's one line that builds it.
"""

from __future__ import annotations

from importlib import resources
from typing import Final, Literal

import msgspec

__all__ = ["PROVIDERS", "PROVIDER_NAMES", "ProviderSpec", "WireFamily", "provider_spec"]

WireFamily = Literal["openai", "openrouter", "anthropic", "demo"]
"""Which adapter speaks to a provider: OpenAI's Chat Completions, OpenRouter's dialect of it,
Anthropic's Messages API, or the offline demo."""


class ProviderSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One provider.

    `url_variable` overrides `base_url` in the simple configuration (`LLM_PROVIDER`); for
    OpenRouter it holds the whole endpoint URL (the seed's `OPENROUTER_API_URL`), as
    `url_variable_is_endpoint` says. `key_required`: the simple configuration refuses to start
    without the key (a local OpenAI-compatible server needs none).
    """

    name: str
    label: str
    family: WireFamily
    base_url: str
    endpoint_path: str
    key_variable: str
    key_required: bool
    default_model: str
    url_variable: str
    url_variable_is_endpoint: bool = False

    def endpoint(self, base_url: str) -> str:
        """The streaming endpoint under `base_url` ("" for the demo, which has none)."""
        if self.family == "demo":
            return ""
        return base_url.rstrip("/") + self.endpoint_path

    @property
    def default_url(self) -> str:
        """The streaming endpoint under the default base URL."""
        return self.endpoint(self.base_url)


class _ProviderFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    provider: tuple[ProviderSpec, ...]


PROVIDERS: Final[tuple[ProviderSpec, ...]] = msgspec.toml.decode(
    resources.files(__package__).joinpath("providers.toml").read_bytes(), type=_ProviderFile
).provider
"""Every row of `providers.toml`, in its order (which is also `LLM_PROVIDER=auto`'s)."""

_BY_NAME: Final = {spec.name: spec for spec in PROVIDERS}
PROVIDER_NAMES: Final = tuple(_BY_NAME)


def provider_spec(name: str) -> ProviderSpec:
    """The row of provider `name` (a `KeyError` for an unknown one: names are validated first)."""
    return _BY_NAME[name]
