"""Tools, tool results, structured output and sampling options of a `/v1` request, checked.

Every check names the parameter as the client spelled it (`param`), so an SDK's error says what
to fix: a tool result that answers no call, a `tool_choice` naming a function that is not in
`tools`, options this service cannot relay back yet (`logprobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aura_agent.domain.models import (
    Message,
    NamedTool,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
    ToolChoice,
)
from aura_agent.http.openai.errors import OpenAIError

if TYPE_CHECKING:
    from aura_agent.http.openai.dto import ChatCompletionRequest, RequestMessage

__all__ = [
    "check_tool_results",
    "sampling_options",
    "tool_call_id_of",
    "tool_calls_of",
    "tool_options",
]


def tool_calls_of(message: RequestMessage, index: int) -> tuple[ToolCall, ...]:
    """The calls of an assistant message; only assistants may carry them."""
    if not message.tool_calls:
        return ()
    if message.role != "assistant":
        raise OpenAIError(
            f"Invalid 'messages[{index}].tool_calls': only assistant messages carry tool calls",
            param=f"messages[{index}].tool_calls",
            code="invalid_value",
        )
    return tuple(
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in message.tool_calls
    )


def tool_call_id_of(message: RequestMessage, index: int) -> str | None:
    """The call a `tool` message answers; required there, and only there."""
    if message.role == "tool":
        if not message.tool_call_id:
            raise OpenAIError(
                f"Missing required parameter: 'messages[{index}].tool_call_id'.",
                param=f"messages[{index}].tool_call_id",
                code="missing_required_parameter",
            )
        return message.tool_call_id
    if message.tool_call_id is not None:
        raise OpenAIError(
            f"Invalid 'messages[{index}].tool_call_id': only tool messages answer a tool call",
            param=f"messages[{index}].tool_call_id",
            code="invalid_value",
        )
    return None


def check_tool_results(messages: Sequence[Message]) -> None:
    """Every tool result answers a call made by an earlier assistant message."""
    called: set[str] = set()
    for index, message in enumerate(messages):
        called.update(call.id for call in message.tool_calls)
        if message.role is Role.TOOL and message.tool_call_id not in called:
            raise OpenAIError(
                f"Invalid 'messages[{index}].tool_call_id': no earlier assistant message made "
                f"a tool call with id {str(message.tool_call_id)[:64]!r}",
                param=f"messages[{index}].tool_call_id",
                code="invalid_value",
            )


def tool_options(request: ChatCompletionRequest) -> dict[str, Any]:
    """`tools`, `tool_choice`, `parallel_tool_calls` and `response_format` as domain options."""
    tools = tuple(
        Tool(
            name=spec.function.name,
            description=spec.function.description,
            parameters=spec.function.parameters,
            strict=spec.function.strict,
        )
        for spec in request.tools or ()
    )
    choice: ToolChoice | None = None
    if request.tool_choice is not None:
        if not tools and request.tool_choice != "none":
            raise OpenAIError(
                "Invalid 'tool_choice': it is only allowed when 'tools' are specified.",
                param="tool_choice",
                code="invalid_value",
            )
        if isinstance(request.tool_choice, str):
            choice = request.tool_choice
        else:
            name = request.tool_choice.function.name
            if name not in {tool.name for tool in tools}:
                raise OpenAIError(
                    f"Invalid 'tool_choice': no function named {name[:64]!r} in 'tools'.",
                    param="tool_choice.function.name",
                    code="invalid_value",
                )
            choice = NamedTool(name=name)
    return {
        "tools": tools,
        "tool_choice": choice,
        "parallel_tool_calls": request.parallel_tool_calls,
        "response_format": _response_format(request),
    }


def _response_format(request: ChatCompletionRequest) -> ResponseFormat | None:
    spec = request.response_format
    if spec is None or spec.type == "text":
        return None
    if spec.type == "json_object":
        return ResponseFormat(type="json_object")
    schema = spec.json_schema
    if schema is None:
        raise OpenAIError(
            "Missing required parameter: 'response_format.json_schema'.",
            param="response_format.json_schema",
            code="missing_required_parameter",
        )
    return ResponseFormat(
        type="json_schema",
        name=schema.name,
        json_schema=schema.schema,
        strict=schema.strict,
        description=schema.description,
    )


def sampling_options(request: ChatCompletionRequest) -> dict[str, Any]:
    """`stop`, `seed`, `top_p`, the penalties and `user`; `logprobs` is refused (not relayed)."""
    for name in ("logprobs", "top_logprobs"):
        if getattr(request, name) not in (None, False):
            raise OpenAIError(
                f"Invalid '{name}': log probabilities are not relayed by this service yet.",
                param=name,
                code="unsupported_parameter",
            )
    stop = request.stop
    return {
        "stop": (stop,) if isinstance(stop, str) else tuple(stop or ()),
        "seed": request.seed,
        "top_p": request.top_p,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "user": request.user,
    }
