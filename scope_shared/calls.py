"""One routed call, framework-agnostic: decide, hold budget, try candidates in order, settle.

Integrations (LangChain, LlamaIndex) wrap only the framework call itself::

    call = RoutedCall.plan(router, query, knob=knob, ledger=ledger)
    for model in call.models_to_try():          # reserves that model's expected cost
        try:
            response = candidates[model].invoke(...)
        except Exception as exc:
            call.failed(model, exc)              # releases the hold, tries the next
            continue
        call.succeeded(model, Usage(input_tokens=.., output_tokens=..))   # charges the real cost
        break
    else:
        raise call.all_failed()

Nothing here awaits, so the same object serves sync and async code.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scope_shared.decision import Decision
from scope_shared.errors import BudgetExceeded, ScopeError
from scope_shared.knobs import Knob
from scope_shared.ledger import Ledger, Reservation

if TYPE_CHECKING:
    from scope_shared.router import Router


class AllCandidatesFailed(ScopeError):
    """Every candidate that fits the budget raised; the attempts say why."""


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
    query: str
    decision: Decision
    ledger_name: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    model: str | None = None
    usage: Usage | None = None
    cost: float | None = None

    @property
    def failed(self) -> list[Attempt]:
        return [a for a in self.attempts if a.error is not None]

    def metadata(self) -> dict[str, Any]:
        """JSON-friendly account of the call: decision, estimates, knob, expected and real cost."""
        d = self.decision.summary()
        return {
            "call_id": self.call_id,
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
            "ledger": self.ledger_name,
        }


class RoutedCall:
    """The state of one call in flight. Create with `RoutedCall.plan`."""

    def __init__(self, router: "Router", record: CallRecord, ledger: Ledger | None) -> None:
        self.router = router
        self.record = record
        self.ledger = ledger
        self._hold: Reservation | None = None

    @classmethod
    def plan(
        cls,
        router: "Router",
        query: str,
        *,
        knob: Knob | None = None,
        ledger: Ledger | None = None,
        candidates: Sequence[str] | None = None,
        call_id: str | None = None,
    ) -> "RoutedCall":
        """Decide for ``query`` (raises `BudgetExceeded` if the ledger is spent and set to raise)."""
        decision = router.route(query, knob=knob, ledger=ledger, candidates=candidates)
        record = CallRecord(
            call_id=call_id or str(uuid.uuid4()),
            query=query,
            decision=decision,
            ledger_name=None if ledger is None else ledger.name,
        )
        return cls(router, record, ledger)

    @property
    def decision(self) -> Decision:
        return self.record.decision

    def models_to_try(self) -> Iterator[str]:
        """Candidates in ranked order, each yielded only once its expected cost is held.

        A candidate that no longer fits what is left of the ledger is skipped; if the decision
        already fell back to the cheapest model (budget spent, ledger set to "cheapest"), that one
        is held even though it overdraws.
        """
        for model in self.decision.ranking:
            if not self._hold_for(model):
                continue
            yield model
            if self.record.model is not None:
                return

    def _hold_for(self, model: str) -> bool:
        if self.ledger is None:
            return True
        expected = self.decision.estimates[model].expected_cost
        try:
            self._hold = self.ledger.reserve(expected, force=self.decision.fallback_to_cheapest)
        except BudgetExceeded:
            return False
        return True

    def failed(self, model: str, error: BaseException) -> None:
        """The candidate raised: release its hold and note why."""
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        self.record.attempts.append(Attempt(model, f"{type(error).__name__}: {error}"))

    def succeeded(self, model: str, usage: Usage) -> CallRecord:
        """The candidate answered: charge its real cost and remember the call for feedback."""
        card = self.router.cards[model]
        cost = card.cost(usage.input_tokens, usage.output_tokens)
        self.record.model = model
        self.record.usage = usage
        self.record.cost = cost
        self.record.attempts.append(Attempt(model))
        entry = {
            "model": model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "info": {"call_id": self.record.call_id},
        }
        if self._hold is not None:
            self._hold.settle(cost, expected_cost=self.decision.estimates[model].expected_cost, **entry)
            self._hold = None
        elif self.ledger is not None:
            self.ledger.charge(cost, **entry)
        self.router.calls.remember(self.record)
        return self.record

    def succeeded_unseen(self, model: str) -> CallRecord:
        """The candidate was handed the work, but its call happens out of sight (a selector picks a
        query engine; the engine calls its own LLM): charge the *expected* cost, flagged
        ``estimated`` in the ledger entry, and remember the call for feedback without token counts
        (``record.usage`` stays None, so feedback stores no made-up lengths)."""
        est = self.decision.estimates[model]
        self.record.model = model
        self.record.cost = est.expected_cost
        self.record.attempts.append(Attempt(model))
        entry = {
            "model": model,
            "input_tokens": est.input_tokens,
            "output_tokens": est.expected_output_tokens,
            "info": {"call_id": self.record.call_id, "estimated": True},
        }
        if self._hold is not None:
            self._hold.settle(est.expected_cost, expected_cost=est.expected_cost, **entry)
            self._hold = None
        elif self.ledger is not None:
            self.ledger.charge(est.expected_cost, expected_cost=est.expected_cost, **entry)
        self.router.calls.remember(self.record)
        return self.record

    def all_failed(self) -> ScopeError:
        """The error to raise when no candidate answered."""
        if not self.record.attempts:
            return BudgetExceeded(
                f"no candidate fits what is left of the budget (${self.ledger.remaining:.6f})"
                if self.ledger is not None
                else "no candidate to try"
            )
        tried = "; ".join(f"{a.model}: {a.error}" for a in self.record.attempts)
        return AllCandidatesFailed(f"every candidate failed ({tried})")


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
                raise ScopeError(f"no recent routed call with id {call_id!r}") from None

    def __len__(self) -> int:
        return len(self._calls)
