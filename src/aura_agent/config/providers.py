"""The providers the service knows, one row each: everything that differs between vendors of a
wire protocol is data here, read by the settings, the routes, the container and error messages.

A new vendor of a known protocol (an OpenAI-compatible API such as Groq or DeepSeek) is one row;
a new wire protocol is one adapter module under `adapters/llm/`, one `family` value and the
container's one line that builds it.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

__all__ = ["PROVIDERS", "PROVIDER_NAMES", "ProviderSpec", "WireFamily", "provider_spec"]

WireFamily = Literal["openai", "openrouter", "anthropic", "demo"]
"""Which adapter speaks to a provider: OpenAI's Chat Completions, OpenRouter's dialect of it,
Anthropic's Messages API, or the offline demo."""


class ProviderSpec(msgspec.Struct, frozen=True, kw_only=True):
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


PROVIDERS: Final[tuple[ProviderSpec, ...]] = (
    ProviderSpec(
        name="openrouter",
        label="OpenRouter",
        family="openrouter",
        base_url="https://openrouter.ai/api/v1",
        endpoint_path="/chat/completions",
        key_variable="OPENROUTER_API_KEY",
        key_required=True,
        default_model="deepseek/deepseek-chat",
        url_variable="OPENROUTER_API_URL",
        url_variable_is_endpoint=True,
    ),
    ProviderSpec(
        name="openai",
        label="OpenAI",
        family="openai",
        base_url="https://api.openai.com/v1",
        endpoint_path="/chat/completions",
        key_variable="OPENAI_API_KEY",
        key_required=False,
        default_model="gpt-4o-mini",
        url_variable="OPENAI_BASE_URL",
    ),
    ProviderSpec(
        name="anthropic",
        label="Anthropic",
        family="anthropic",
        base_url="https://api.anthropic.com",
        endpoint_path="/v1/messages",
        key_variable="ANTHROPIC_API_KEY",
        key_required=True,
        default_model="claude-3-5-haiku-latest",
        url_variable="ANTHROPIC_BASE_URL",
    ),
    ProviderSpec(
        name="demo",
        label="the demo model",
        family="demo",
        base_url="",
        endpoint_path="",
        key_variable="",
        key_required=False,
        default_model="aura/offline-demo",
        url_variable="",
    ),
    ProviderSpec(
        name="deepseek",
        label="DeepSeek",
        family="openai",
        base_url="https://api.deepseek.com",
        endpoint_path="/chat/completions",
        key_variable="DEEPSEEK_API_KEY",
        key_required=True,
        default_model="deepseek-chat",
        url_variable="DEEPSEEK_BASE_URL",
    ),
    ProviderSpec(
        name="groq",
        label="Groq",
        family="openai",
        base_url="https://api.groq.com/openai/v1",
        endpoint_path="/chat/completions",
        key_variable="GROQ_API_KEY",
        key_required=True,
        default_model="llama-3.3-70b-versatile",
        url_variable="GROQ_BASE_URL",
    ),
    ProviderSpec(
        name="mistral",
        label="Mistral",
        family="openai",
        base_url="https://api.mistral.ai/v1",
        endpoint_path="/chat/completions",
        key_variable="MISTRAL_API_KEY",
        key_required=True,
        default_model="mistral-small-latest",
        url_variable="MISTRAL_BASE_URL",
    ),
)

_BY_NAME: Final = {spec.name: spec for spec in PROVIDERS}
PROVIDER_NAMES: Final = tuple(_BY_NAME)


def provider_spec(name: str) -> ProviderSpec:
    """The row of provider `name` (a `KeyError` for an unknown one: names are validated first)."""
    return _BY_NAME[name]
