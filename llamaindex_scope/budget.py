"""Budgets for LlamaIndex: ``with scope_budget(ledger=..., min_accuracy=0.8): ...``, and the budget glue.

LlamaIndex has no per-run config object, so the knob and ledger for a block of code are put in
force with a context manager (the core's `scope_shared.budget.scopes`; blocks nest: a call is
charged to every enclosing block's ledger). This module re-exports it where LlamaIndex users look
for it, and holds the LlamaIndex side of budgeting: the prompt a hold prices (every message,
retrieved context and tool schema sent) and the final answer of a run its "end"-mode budget stopped.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, MessageRole

from llamaindex_scope.texts import message_text
from scope_shared.budget.ledger import Ledger
from scope_shared.budget.scopes import BudgetScope, current_budget, scope_budget
from scope_shared.budget.settings import settings_for_call
from scope_shared.calls import ends_gracefully, prompt_tokens, stop_metadata, stop_text
from scope_shared.errors import BudgetExceeded
from scope_shared.tokens import TokenCounter

__all__ = [
    "BudgetScope",
    "Ledger",
    "chat_prompt_tokens",
    "current_budget",
    "ends_with",
    "scope_budget",
    "settings_for_call",
    "stop_chat",
    "stop_completion",
]


def _tool_text(tool: Any) -> str:
    try:
        return json.dumps(tool.metadata.to_openai_tool(skip_length_check=True), sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 - an odd tool still costs its repr
        return repr(tool)


def chat_prompt_tokens(messages: Sequence[ChatMessage], tools: Sequence[Any], counter: TokenCounter) -> int:
    """Input tokens a chat call sends: every message (retrieved context included) and tool schema."""
    return prompt_tokens([message_text(m) for m in messages] + [_tool_text(t) for t in tools], counter)


def stop_chat(stop: BudgetExceeded) -> ChatResponse:
    """The final chat answer of an "end"-mode stop (no tool calls: an agent ends on it)."""
    text = stop_text(stop)
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
        delta=text,
        additional_kwargs={"scope": stop_metadata(stop)},
    )


def stop_completion(stop: BudgetExceeded) -> CompletionResponse:
    """The final completion of an "end"-mode stop."""
    text = stop_text(stop)
    return CompletionResponse(text=text, delta=text, additional_kwargs={"scope": stop_metadata(stop)})


def ends_with(answer: Callable[[BudgetExceeded], Any], stream: bool = False) -> Callable[[Any], Any]:
    """Decorate an LLM method so that an "end"-mode budget stop returns ``answer(stop)`` (as a
    one-item stream with ``stream``) instead of raising; other stops propagate."""

    def final(stop: BudgetExceeded, is_async: bool) -> Any:
        if not ends_gracefully(stop):
            raise stop
        item = answer(stop)
        if not stream:
            return item
        return _aone(item) if is_async else _one(item)

    def decorate(method: Any) -> Any:
        if inspect.iscoroutinefunction(method):

            async def async_method(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await method(*args, **kwargs)
                except BudgetExceeded as stop:
                    return final(stop, is_async=True)

            return _named_like(async_method, method)

        def sync_method(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except BudgetExceeded as stop:
                return final(stop, is_async=False)

        return _named_like(sync_method, method)

    return decorate


def _named_like(wrapper: Any, method: Any) -> Any:
    """Name and document ``wrapper`` like ``method`` without ``functools.wraps``: its
    ``__wrapped__`` would tell LlamaIndex's ``llm_chat_callback`` the method is already wrapped."""
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(wrapper, attr, getattr(method, attr))
    return wrapper


def _one(item: Any) -> Any:
    yield item


async def _aone(item: Any) -> Any:
    yield item
