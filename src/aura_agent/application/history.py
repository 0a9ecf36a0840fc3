"""Fitting a conversation into the model's context: the newest turns that fit a token budget."""

from __future__ import annotations

from collections.abc import Sequence

from aura_agent.domain.models import Message, Role

# Chat formats wrap every message in a few tokens of role markers.
_MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(message: Message) -> int:
    """Cheap, tokenizer-free estimate (about four characters a token), good enough for budgeting."""
    return len(message.content) // 4 + _MESSAGE_OVERHEAD_TOKENS


def trim_history(history: Sequence[Message], budget_tokens: int) -> list[Message]:
    """Keep the newest messages whose estimated size fits `budget_tokens`, dropping oldest first.

    The kept part never starts with an assistant message, so the model never sees a reply without
    the question it answered.
    """
    kept_from = len(history)
    used = 0
    for index in range(len(history) - 1, -1, -1):
        used += estimate_tokens(history[index])
        if used > budget_tokens:
            break
        kept_from = index
    while kept_from < len(history) and history[kept_from].role is not Role.USER:
        kept_from += 1
    return list(history[kept_from:])


def build_prompt(
    history: Sequence[Message],
    user_message: Message,
    *,
    system_prompt: str | None,
    budget_tokens: int,
) -> list[Message]:
    """System prompt + trimmed history + the new user message, which appears exactly once."""
    prompt: list[Message] = []
    remaining = budget_tokens - estimate_tokens(user_message)
    if system_prompt:
        system = Message(role=Role.SYSTEM, content=system_prompt)
        prompt.append(system)
        remaining -= estimate_tokens(system)
    prompt.extend(trim_history(history, max(remaining, 0)))
    prompt.append(user_message)
    return prompt
