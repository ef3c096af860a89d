"""SCOPE's decisions and costs as LlamaIndex instrumentation events.

Every routed call dispatches a `SCOPERoutingEvent` (what was chosen, why, what it should cost)
and, once the answering model is known, a `SCOPECostEvent` (what it really cost, from whose token
counts). Both go through ``get_dispatcher(__name__)``, so they reach every event handler attached
to LlamaIndex's root dispatcher (observability integrations attach there) and carry the span id of
the LLM call or query they happen in.
"""

from __future__ import annotations

from typing import Any, Literal

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events import BaseEvent

from scope_shared.budget.nesting import Budgets
from scope_shared.calls import CallRecord

dispatcher = get_dispatcher(__name__)

Source = Literal["llm", "selector"]


class SCOPERoutingEvent(BaseEvent):
    """The router decided: ``model`` is the choice, ``ranking`` the fallback order."""

    call_id: str
    source: Source
    query: str
    model: str
    ranking: list[str]
    knob: dict[str, float]
    explanation: str
    expected_cost: float
    p_correct: float
    budget_left: float | None = None
    fallback_to_cheapest: bool = False
    ledger: str | None = None

    @classmethod
    def class_name(cls) -> str:
        return "SCOPERoutingEvent"


class SCOPECostEvent(BaseEvent):
    """A routed call settled: who answered, its real (or, for a selector, expected) cost."""

    call_id: str
    source: Source
    model: str
    cost: float
    expected_cost: float
    input_tokens: float | None = None
    output_tokens: float | None = None
    tokens_counted_locally: bool | None = None
    cost_is_estimate: bool = False
    stopped: str | None = None  # a stream that ended early (charged what it produced), and why
    failed: list[dict[str, Any]] = []
    budget_spent: float | None = None
    budget_remaining: float | None = None

    @classmethod
    def class_name(cls) -> str:
        return "SCOPECostEvent"


def emit_routed(record: CallRecord, source: Source) -> SCOPERoutingEvent:
    """Dispatch (and return) the routing event of a call that has just been planned."""
    d = record.decision
    event = SCOPERoutingEvent(
        call_id=record.call_id,
        source=source,
        query=record.query,
        model=d.model,
        ranking=list(d.ranking),
        knob=dict(d.knob),
        explanation=d.explanation,
        expected_cost=d.chosen.expected_cost,
        p_correct=d.chosen.p_correct,
        budget_left=d.budget_left,
        fallback_to_cheapest=d.fallback_to_cheapest,
        ledger=record.ledger_name,
    )
    dispatcher.event(event)
    return event


def emit_settled(
    record: CallRecord, source: Source, ledger: Budgets | None = None, cost_is_estimate: bool = False,
    span_id: str | None = None,
) -> SCOPECostEvent:
    """Dispatch (and return) the cost event of a call whose answering model is known.

    ``span_id``: the span the call ran in, for events sent after it closed (a consumed stream)."""
    assert record.model is not None and record.cost is not None
    meta = record.metadata()
    event = SCOPECostEvent(
        call_id=record.call_id,
        source=source,
        model=record.model,
        cost=record.cost,
        expected_cost=meta["expected_cost"],
        input_tokens=meta["input_tokens"],
        output_tokens=meta["output_tokens"],
        tokens_counted_locally=meta["tokens_counted_locally"],
        cost_is_estimate=cost_is_estimate,
        stopped=meta["stopped"],
        failed=meta["failed"],
        budget_spent=None if ledger is None else ledger.spent,
        budget_remaining=None if ledger is None or not ledger.capped else ledger.remaining,
        **({"span_id": span_id} if span_id is not None else {}),
    )
    dispatcher.event(event)
    return event
