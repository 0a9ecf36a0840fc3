"""Bodies of `/v1` answers in OpenAI's shapes: a whole completion, its usage, the model list."""

from __future__ import annotations

import msgspec

from aura_agent.domain.models import Usage


class PromptTokensDetails(msgspec.Struct, kw_only=True, frozen=True):
    """Part of the prompt served from the provider's cache."""

    cached_tokens: int


class CompletionTokensDetails(msgspec.Struct, kw_only=True, frozen=True):
    """Part of the completion spent on (hidden) reasoning."""

    reasoning_tokens: int


class CompletionUsage(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """`usage`; the details appear only when the provider reported them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


def completion_usage(usage: Usage) -> CompletionUsage:
    """OpenAI's usage object for a domain `Usage`."""
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=None
        if usage.cached_tokens is None
        else PromptTokensDetails(cached_tokens=usage.cached_tokens),
        completion_tokens_details=None
        if usage.reasoning_tokens is None
        else CompletionTokensDetails(reasoning_tokens=usage.reasoning_tokens),
    )


class ResponseFunction(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    arguments: str


class ResponseToolCall(msgspec.Struct, kw_only=True, frozen=True):
    """One tool call of a non-streamed reply."""

    id: str
    type: str = "function"
    function: ResponseFunction


class AssistantMessage(msgspec.Struct, kw_only=True, frozen=True):
    """The reply of a non-streamed completion; `content` is null when it only calls tools."""

    role: str = "assistant"
    content: str | None
    refusal: None = None
    tool_calls: list[ResponseToolCall] | msgspec.UnsetType = msgspec.UNSET


class Choice(msgspec.Struct, kw_only=True, frozen=True):
    """The one choice of a non-streamed completion."""

    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


class ChatCompletion(msgspec.Struct, kw_only=True, frozen=True):
    """The body of a non-streamed `POST /v1/chat/completions`; `usage` is null if unreported."""

    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None


class ModelObject(msgspec.Struct, kw_only=True, frozen=True):
    """One configured route, as `GET /v1/models` lists it."""

    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelList(msgspec.Struct, kw_only=True, frozen=True):
    """The body of `GET /v1/models`."""

    object: str = "list"
    data: list[ModelObject]
