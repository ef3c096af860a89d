"""Feedback from LangChain objects: a reply, a run id, a call id or a record names the routed call."""

from __future__ import annotations

from uuid import UUID

from langchain_core.messages import BaseMessage

from scope_shared.calls import CallRecord
from scope_shared.errors import FeedbackError
from scope_shared.routing.router import Router


def record_feedback(router: Router, call: str | UUID | CallRecord | BaseMessage, correct: float) -> int:
    """Store a routed call's real outcome (its routing text, the model that answered, its real tokens);
    feedback on the same call again replaces the earlier one. Returns the history question id."""
    if isinstance(call, BaseMessage):
        scope = call.response_metadata.get("scope")
        if not scope or not scope.get("call_id") or scope.get("routed") is False:
            raise FeedbackError("this message was not answered by a SCOPE-routed candidate (no response_metadata['scope'])")
        call = scope["call_id"]
    if isinstance(call, UUID):
        call = str(call)
    return router.record_feedback(call, correct)
