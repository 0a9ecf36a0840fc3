"""The chat use case: load the conversation, stream the model's reply, remember the turn."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import msgspec

from aura_agent.application.history import build_prompt
from aura_agent.domain.errors import ProviderStreamError, SessionStoreError, TurnNotSavedError
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    Role,
    StreamEnd,
    TextDelta,
    Usage,
)
from aura_agent.domain.ports import ChatModel, SessionStore


class PreparedTurn(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to stream one reply, gathered before the response starts.

    `session_id` None is a stateless turn: the caller sent the whole conversation, nothing is
    loaded or saved.
    """

    session_id: str | None
    user_message: Message
    prompt: list[Message]
    options: GenerationOptions


class ChatService:
    """Runs one chat turn in two steps, so that store failures surface before streaming begins.

    `prepare` may raise (e.g. `StoreUnavailable`) while an HTTP status can still be chosen;
    `stream_reply` runs inside the response and raises domain errors the caller turns into events.
    """

    def __init__(
        self,
        *,
        model: ChatModel,
        store: SessionStore,
        system_prompt: str | None,
        history_token_budget: int,
    ) -> None:
        self._model = model
        self._store = store
        self._system_prompt = system_prompt
        self._history_token_budget = history_token_budget

    @property
    def model(self) -> ChatModel:
        """The chat model this service talks to."""
        return self._model

    async def prepare(self, session_id: str, text: str, options: GenerationOptions) -> PreparedTurn:
        """Load the session and build the prompt for the new message."""
        history = await self._store.load(session_id)
        user_message = Message(role=Role.USER, content=text)
        prompt = build_prompt(
            history,
            user_message,
            system_prompt=self._system_prompt,
            budget_tokens=self._history_token_budget,
        )
        return PreparedTurn(
            session_id=session_id, user_message=user_message, prompt=prompt, options=options
        )

    def prepare_stateless(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> PreparedTurn:
        """A turn over a conversation the caller sends whole (the OpenAI-compatible API).

        The caller owns its context, so nothing is trimmed; only the configured system prompt
        is put first, as for every conversation.
        """
        if not messages:
            raise ValueError("a conversation needs at least one message")
        prompt = (
            [Message(role=Role.SYSTEM, content=self._system_prompt)] if self._system_prompt else []
        )
        prompt.extend(messages)
        return PreparedTurn(
            session_id=None, user_message=prompt[-1], prompt=prompt, options=options
        )

    async def stream_reply(self, turn: PreparedTurn) -> AsyncGenerator[ChatEvent, None]:
        """Yield the model's events; save the turn before yielding the final `StreamEnd`.

        Holding back `StreamEnd` until the turn is stored means a client that saw "done" can rely
        on the history. A failed, cut or cancelled stream saves nothing, so a retry is clean;
        neither does a stateless turn. The saved reply carries the usage the model reported.
        """
        parts: list[str] = []
        end: StreamEnd | None = None
        usage: Usage | None = None
        async for event in self._model.stream(turn.prompt, turn.options):
            if type(event) is TextDelta:
                parts.append(event.text)
            elif type(event) is StreamEnd:
                end = event
                continue
            elif type(event) is Usage:
                usage = event
            yield event
        if end is None:
            raise ProviderStreamError(
                "the model's stream ended without finishing", provider=self._model.provider
            )
        reply = "".join(parts)
        if reply and turn.session_id is not None:
            try:
                await self._store.append_turn(
                    turn.session_id,
                    turn.user_message,
                    Message(role=Role.ASSISTANT, content=reply, usage=usage),
                )
            except SessionStoreError as exc:
                raise TurnNotSavedError(
                    "the reply was not saved to the conversation history; please send the "
                    "message again"
                ) from exc
        yield end
