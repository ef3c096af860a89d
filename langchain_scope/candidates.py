"""What a candidate may be, and how a binding reaches the chat model inside a wrapper.

A candidate is a chat model, or a chat model wrapped the usual LangChain ways: ``.bind(...)``,
``.with_config(...)``, ``.with_retry(...)``, ``.with_fallbacks(...)``, or a configurable model
from ``init_chat_model(configurable_fields=...)``. Tool and structured-output bindings are
applied through the wrapper (`call_through`), so a retrying candidate still retries its tool calls.
Tool capability comes from the model card's ``supports_tools`` when set, else from the chat model
inside (whether its class implements ``bind_tools``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableBinding
from langchain_core.runnables.base import RunnableBindingBase
from langchain_core.runnables.fallbacks import RunnableWithFallbacks

from scope_shared.cards import ModelCard
from scope_shared.errors import InvalidComponentError


def inner_chat_model(candidate: Any) -> BaseChatModel | None:
    """The chat model a candidate wraps (None when it cannot be told before a call, e.g. configurable)."""
    seen = 0
    while seen < 16:
        if isinstance(candidate, BaseChatModel):
            return candidate
        if isinstance(candidate, RunnableBindingBase):
            candidate = candidate.bound
        elif isinstance(candidate, RunnableWithFallbacks):
            candidate = candidate.runnable
        else:
            return None
        seen += 1
    return None


def check_candidate(name: str, candidate: Any) -> None:
    """Raise a clear `ScopeError` unless ``candidate`` is a chat model or a Runnable around one."""
    if not isinstance(candidate, Runnable):
        raise InvalidComponentError(
            f"candidate {name!r} is a {type(candidate).__name__}, not a LangChain chat model or Runnable"
        )


def call_through(candidate: Runnable, method: str, /, *args: Any, **kwargs: Any) -> Runnable:
    """``candidate.<method>(...)`` (``bind_tools``, ``with_structured_output``), reaching inside
    wrappers that do not forward it (``with_retry``) and wrapping the result the same way."""
    if isinstance(candidate, RunnableBindingBase) and not isinstance(candidate, RunnableBinding):
        inner = call_through(candidate.bound, method, *args, **kwargs)
        return candidate.model_copy(update={"bound": inner})
    fn = getattr(candidate, method, None)
    if fn is None:
        raise InvalidComponentError(f"{type(candidate).__name__} has no {method}()")
    return fn(*args, **kwargs)


def can_bind_tools(candidate: Any, card: ModelCard | None = None) -> bool:
    """Whether a candidate can call tools: the card says so, else its chat model implements ``bind_tools``."""
    if card is not None and card.supports_tools is not None:
        return card.supports_tools
    model = inner_chat_model(candidate)
    if model is None:
        return callable(getattr(candidate, "bind_tools", None))
    return type(model).bind_tools is not BaseChatModel.bind_tools

