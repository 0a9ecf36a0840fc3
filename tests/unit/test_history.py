"""Prompt building: system prompt, history trimmed oldest-first, the new message exactly once."""

from __future__ import annotations

from aura_agent.application.history import build_prompt, estimate_tokens, trim_history
from aura_agent.domain.models import Message, Role


def _turns(count: int, size: int = 40) -> list[Message]:
    history: list[Message] = []
    for index in range(count):
        history.append(Message(role=Role.USER, content=f"q{index} " + "x" * size))
        history.append(Message(role=Role.ASSISTANT, content=f"a{index} " + "y" * size))
    return history


def test_everything_fits_in_a_large_budget() -> None:
    history = _turns(3)
    assert trim_history(history, 10_000) == history


def test_oldest_messages_go_first_and_a_reply_never_leads() -> None:
    history = _turns(5)
    per_message = estimate_tokens(history[0])
    kept = trim_history(history, per_message * 3)
    assert kept == history[-2:]
    assert kept[0].role is Role.USER


def test_zero_budget_keeps_nothing() -> None:
    assert trim_history(_turns(2), 0) == []


def test_prompt_has_system_then_history_then_the_new_message_once() -> None:
    history = _turns(2)
    new = Message(role=Role.USER, content="new question")
    prompt = build_prompt(history, new, system_prompt="Be brief.", budget_tokens=10_000)
    assert prompt[0] == Message(role=Role.SYSTEM, content="Be brief.")
    assert prompt[1:-1] == history
    assert prompt[-1] == new
    assert sum(1 for m in prompt if m.content == "new question") == 1


def test_the_budget_counts_the_system_prompt_and_new_message() -> None:
    history = _turns(4)
    new = Message(role=Role.USER, content="n" * 400)
    prompt = build_prompt(history, new, system_prompt="s" * 400, budget_tokens=260)
    assert prompt[-1] == new
    assert prompt[0].role is Role.SYSTEM
    assert len(prompt) < len(history) + 2
    kept = prompt[1:-1]
    assert kept == history[len(history) - len(kept) :]
