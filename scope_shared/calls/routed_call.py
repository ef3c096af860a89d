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

import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from scope_shared.budget.ledger import Ledger, Reservation
from scope_shared.errors import AllCandidatesFailed, BudgetExceeded, ScopeError
from scope_shared.routing.decision import Decision
from scope_shared.routing.knobs import Knob
from scope_shared.routing.records import Attempt, CallRecord, Usage

if TYPE_CHECKING:
    from scope_shared.routing.router import Router


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
