"""Decoding and validating `POST /chat` bodies: each failure names its field."""

from __future__ import annotations

import pytest

from aura_agent.http.chat.dto import decode_chat_request, validate_chat
from aura_agent.http.problems import RequestProblem
from tests.support import make_settings


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"session_id": "x"}', "message"),
        (b'{"message": 5}', "message"),
        (b'{"message": "hi", "session_id": "../etc"}', "session_id"),
        (b'{"message": "hi", "session_id": ""}', "session_id"),
        (b'{"message": "hi", "session_id": "' + b"a" * 129 + b'"}', "session_id"),
        (b'{"message": "hi", "temperature": 2.5}', "temperature"),
        (b'{"message": "hi", "temperature": -0.1}', "temperature"),
        (b'{"message": "hi", "temperature": "hot"}', "temperature"),
        (b'{"message": "hi", "max_tokens": 0}', "max_tokens"),
        (b'{"message": "hi", "max_tokens": 1.5}', "max_tokens"),
    ],
)
def test_decode_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(RequestProblem) as caught:
        decode_chat_request(body)
    assert caught.value.field == field
    assert caught.value.status_code == 400
    assert field in caught.value.detail


def test_a_valid_body_decodes_and_ignores_unknown_fields() -> None:
    request = decode_chat_request(
        b'{"message": "hi", "session_id": "abc_DEF-1", "temperature": 0, "extra": 1}'
    )
    assert request.message == "hi"
    assert request.session_id == "abc_DEF-1"
    assert request.temperature == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"message": "   \\n\\t"}', "message"),
        (b'{"message": "' + b"x" * 101 + b'"}', "message"),
        (b'{"message": "hi", "max_tokens": 5000}', "max_tokens"),
        (b'{"message": "hi", "model": "evil/model"}', "model"),
    ],
)
def test_configured_limits_name_the_field(body: bytes, field: str) -> None:
    settings = make_settings(max_message_chars=100, max_tokens_limit=4096, model_max_tokens=100)
    with pytest.raises(RequestProblem) as caught:
        validate_chat(decode_chat_request(body), settings)
    assert caught.value.field == field


def test_allowed_model_and_options_pass_through() -> None:
    settings = make_settings(allowed_models="deepseek/deepseek-chat,openai/gpt-4o-mini")
    options = validate_chat(
        decode_chat_request(b'{"message": "hi", "model": "openai/gpt-4o-mini", "max_tokens": 9}'),
        settings,
    )
    assert options.model == "openai/gpt-4o-mini"
    assert options.max_tokens == 9
