"""SCOPELLM's legacy-callback manager: the chosen child's LLM event is the LLM call, SCOPELLM's is not.

LlamaIndex's ``@llm_chat_callback`` decorators send an LLM start/end event for SCOPELLM's own
method and again for the child it delegates to, so ``TokenCountingHandler`` (and any handler that
counts LLM events) counted every call twice. `RoutingCallbacks` wraps the manager SCOPELLM is given
(or ``Settings`` assigns): same handlers, every other event passed on, SCOPELLM's own LLM events
dropped. The instrumentation events (``LLMChatStartEvent``..., spans) are unaffected.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from llama_index.core.callbacks import CallbackManager, CBEventType


class RoutingCallbacks(CallbackManager):
    """A view of ``inner`` (same handlers) that does not forward LLM events."""

    def __init__(self, inner: CallbackManager) -> None:
        super().__init__(handlers=inner.handlers)
        self.handlers = inner.handlers  # the very list: handlers added later are seen too
        self.inner = inner

    def on_event_start(
        self, event_type: CBEventType, payload: Optional[Dict[str, Any]] = None, event_id: Optional[str] = None,
        parent_id: Optional[str] = None, **kwargs: Any,
    ) -> str:
        if event_type == CBEventType.LLM:
            return event_id or ""
        return super().on_event_start(event_type, payload, event_id=event_id, parent_id=parent_id, **kwargs)

    def on_event_end(
        self, event_type: CBEventType, payload: Optional[Dict[str, Any]] = None, event_id: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        if event_type == CBEventType.LLM:
            return
        super().on_event_end(event_type, payload, event_id=event_id, **kwargs)


def routing_callbacks(manager: Any) -> Any:
    """``manager`` wrapped (once) in `RoutingCallbacks`; anything else unchanged."""
    if isinstance(manager, CallbackManager) and not isinstance(manager, RoutingCallbacks):
        return RoutingCallbacks(manager)
    return manager
