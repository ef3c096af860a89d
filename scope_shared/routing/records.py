"""What a routed call did (`CallRecord`, `Usage`, `Attempt`) and the book of recent calls (`CallBook`).

The router keeps a `CallBook` so feedback can name a call by id; `scope_shared.calls` fills the
records in as a call runs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from scope_shared.errors import FeedbackError
from scope_shared.routing.decision import Decision


@dataclass(frozen=True)
class Usage:
    """Tokens a call really used; ``counted`` is True when we counted them (the provider reported none)."""

    input_tokens: float
    output_tokens: float
    counted: bool = False


@dataclass(frozen=True)
class Attempt:
    """One candidate tried: the error it raised, or None on success."""

    model: str
    error: str | None = None


@dataclass
class CallRecord:
    """Everything known about one routed call (what the integrations put in response metadata)."""

    call_id: str
    query: str  # the routing text: what the decision was made on, and what feedback stores
    decision: Decision
    ledger_name: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    model: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    query_source: str | None = None  # where the routing text came from (a template, a marked message, ...)
    stopped: str | None = None  # why a streamed answer ended early (it was charged what it produced)

    @property
    def failed(self) -> list[Attempt]:
        return [a for a in self.attempts if a.error is not None]

    def metadata(self) -> dict[str, Any]:
        """JSON-friendly account of the call: decision, estimates, knob, expected and real cost."""
        d = self.decision.summary()
        return {
            "call_id": self.call_id,
            "routing_text": self.query,
            "routing_text_source": self.query_source,
            "model": self.model or self.decision.model,
            "chosen": self.decision.model,
            "knob": d["knob"],
            "explanation": d["explanation"],
            "expected_cost": self.decision.estimates[self.model].expected_cost
            if self.model in self.decision.estimates
            else d["expected_cost"],
            "cost": self.cost,
            "input_tokens": None if self.usage is None else self.usage.input_tokens,
            "output_tokens": None if self.usage is None else self.usage.output_tokens,
            "tokens_counted_locally": None if self.usage is None else self.usage.counted,
            "failed": [{"model": a.model, "error": a.error} for a in self.failed],
            "ranking": d["ranking"],
            "estimates": d["estimates"],
            "budget_left": d["budget_left"],
            "fallback_to_cheapest": d["fallback_to_cheapest"],
            "over_max_cost": d["over_max_cost"],
            "partial": self.stopped is not None,
            "stopped": self.stopped,
            "ledger": self.ledger_name,
        }


class CallBook:
    """The most recent routed calls by id, so feedback can name a call (bounded, thread-safe)."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._calls: OrderedDict[str, CallRecord] = OrderedDict()
        self._maxlen = maxlen
        self._lock = threading.Lock()

    def remember(self, record: CallRecord) -> None:
        with self._lock:
            self._calls[record.call_id] = record
            self._calls.move_to_end(record.call_id)
            while len(self._calls) > self._maxlen:
                self._calls.popitem(last=False)

    def get(self, call_id: str) -> CallRecord:
        with self._lock:
            try:
                return self._calls[call_id]
            except KeyError:
                raise FeedbackError(f"no recent routed call with id {call_id!r}") from None

    def __len__(self) -> int:
        return len(self._calls)
