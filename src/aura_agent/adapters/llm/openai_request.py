"""The request side of the Chat Completions wire format: messages and options as OpenAI names them.

Shared by every OpenAI-family adapter (OpenAI-compatible servers, OpenRouter). A field is sent
only when the request set it, so the vendor's own defaults apply otherwise; a text-only message
costs one small dict, as before tools existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aura_agent.domain.models import GenerationOptions, Message, NamedTool, ResponseFormat, Tool

__all__ = ["option_fields", "wire_messages"]


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages field by field, so a new `Message` field never leaks onto the wire unasked."""
    return [_wire_message(message) for message in messages]


def _wire_message(message: Message) -> dict[str, Any]:
    if not message.tool_calls and message.tool_call_id is None and message.name is None:
        return {"role": message.role, "content": message.content}
    wire: dict[str, Any] = {
        "role": message.role,
        # OpenAI's assistant message with calls and no text has `content: null`
        "content": None if message.tool_calls and not message.content else message.content,
    }
    if message.name is not None:
        wire["name"] = message.name
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def option_fields(options: GenerationOptions) -> dict[str, Any]:
    """The body fields for the options a request set (model, temperature and length aside)."""
    fields: dict[str, Any] = {}
    if options.tools:
        fields["tools"] = [_wire_tool(tool) for tool in options.tools]
    choice = options.tool_choice
    if choice is not None:
        fields["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}}
            if isinstance(choice, NamedTool)
            else choice
        )
    if options.parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = options.parallel_tool_calls
    if options.response_format is not None:
        fields["response_format"] = _wire_response_format(options.response_format)
    if options.stop:
        fields["stop"] = list(options.stop)
    for name in ("seed", "top_p", "presence_penalty", "frequency_penalty", "user"):
        value = getattr(options, name)
        if value is not None:
            fields[name] = value
    return fields


def _wire_tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _wire_response_format(response_format: ResponseFormat) -> dict[str, Any]:
    if response_format.type == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": response_format.name or "response"}
    if response_format.description is not None:
        schema["description"] = response_format.description
    if response_format.json_schema is not None:
        schema["schema"] = response_format.json_schema
    if response_format.strict is not None:
        schema["strict"] = response_format.strict
    return {"type": "json_schema", "json_schema": schema}
