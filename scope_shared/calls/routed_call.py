"""One routed call, framework-agnostic: decide, hold budget, try candidates in order, settle.

Integrations (LangChain, LlamaIndex) wrap only the framework call itself::

    settings = settings_for_call(Settings.read(call_kwargs), built=component_settings)
    call = RoutedCall.plan(router, query, settings, prompt_tokens=n)
    for model in call.models_to_try():          # holds that model's expected cost
        try:
            response = candidates[model].invoke(...)
        except Exception as exc:
            call.failed(model, exc)              # releases the hold
            if call.moves_on(exc):
                continue                         # tries the next
            raise
        call.succeeded(model, Usage(input_tokens=.., output_tokens=..))   # charges the real cost
        break
    else:
        raise call.all_failed()

Every path releases the hold exactly once: `failed` cancels it, `succeeded` settles it (also for a
stream stopped early, with ``stopped=`` saying why), and a hold never reached either way is
cancelled when the reservation is garbage-collected. Nothing here awaits, so the same object
serves sync and async code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from scope_shared.budget.base import Reservation
from scope_shared.budget.nesting import Budgets, LedgerLike
from scope_shared.budget.settings import CallSettings
from scope_shared.calls.fallback import DEFAULT_FALLBACK_ON, FallbackOn, all_failed_error, check_fallback_on, moves_on
from scope_shared.calls.holds import hold_amount
from scope_shared.calls.settling import settled_cost
from scope_shared.errors import BudgetExceeded, ScopeError
from scope_shared.routing.decision import Decision
from scope_shared.routing.records import Attempt, CallRecord, Usage

if TYPE_CHECKING:
    from scope_shared.routing.router import Router


class RoutedCall:
    """The state of one call in flight. Create with `RoutedCall.plan`."""

    def __init__(
        self,
        router: "Router",
        record: CallRecord,
        ledger: LedgerLike | None,
        fallback_on: FallbackOn = DEFAULT_FALLBACK_ON,
    ) -> None:
        self.router = router
        self.record = record
        self.budgets = Budgets.of(ledger)
        self.fallback_on = check_fallback_on(fallback_on)
        self._hold: Reservation | None = None
        self._errors: list[tuple[str, BaseException]] = []
        self._hold_refused: BudgetExceeded | None = None

    @classmethod
    def plan(
        cls,
        router: "Router",
        query: str,
        settings: CallSettings | None = None,
        *,
        candidates: Sequence[str] | None = None,
        call_id: str | None = None,
        prompt_tokens: float | None = None,
        fallback_on: FallbackOn = DEFAULT_FALLBACK_ON,
    ) -> "RoutedCall":
        """Decide for ``query`` (the routing text) under ``settings`` (the call's knob and budgets,
        from `scope_shared.budget.settings.settings_for_call`; ``None``: the router's default knob,
        no budget), pricing ``prompt_tokens`` (the whole prompt that will be sent; default: the
        query's own). Raises `BudgetExceeded` if a capping budget cannot pay for any candidate, or
        ``max_cost`` fits none under one."""
        settings = settings or CallSettings(knob=None, budgets=None)
        budgets = settings.budgets
        decision = router.route(
            query, knob=settings.knob, ledger=budgets, candidates=candidates, prompt_tokens=prompt_tokens
        )
        record = CallRecord(
            call_id=call_id or str(uuid.uuid4()),
            query=query,
            decision=decision,
            ledger_name=None if budgets is None else budgets.name,
        )
        return cls(router, record, budgets, fallback_on)

    @property
    def decision(self) -> Decision:
        return self.record.decision

    @property
    def ledger(self) -> Budgets | None:
        """The budgets this call is charged to (innermost first), or None."""
        return self.budgets

    def models_to_try(self) -> Iterator[str]:
        """Candidates in ranked order, each yielded only once its hold is taken.

        A candidate whose hold no longer fits what is left is skipped; if the decision already
        fell back to the cheapest model (only soft budgets are short), that one is held even
        though it overdraws them. A soft budget never stops a call: when concurrent calls took
        the room this one saw when it decided, the candidates it could not hold are tried again,
        cheapest first, overdrawing the soft budgets (a capping budget still refuses).
        """
        refused: list[str] = []
        for model in self.decision.ranking:
            if not self._hold_for(model, self.decision.fallback_to_cheapest):
                refused.append(model)
                continue
            yield model
            if self.record.model is not None:
                return
        if not refused or not any(lv.mode == "soft" for lv in self.budgets.levels):  # type: ignore[union-attr]
            return
        for model in sorted(refused, key=lambda m: self.decision.estimates[m].expected_cost):
            if not self._hold_for(model, force=True):
                continue
            yield model
            if self.record.model is not None:
                return

    def _hold_for(self, model: str, force: bool) -> bool:
        if self.budgets is None:
            return True
        amount = hold_amount(self.decision.estimates[model], self.budgets.hold_factor)
        try:
            self._hold = self.budgets.reserve(amount, force=force)
        except BudgetExceeded as exc:
            self._hold_refused = exc
            return False
        return True

    def moves_on(self, error: BaseException) -> bool:
        """Whether ``error`` from a candidate hands the call to the next one (see ``fallback_on``)."""
        return moves_on(error, self.fallback_on)

    def _release(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None

    def failed(self, model: str, error: BaseException) -> None:
        """The candidate raised before answering: release its hold and note why."""
        self._release()
        self._errors.append((model, error))
        self.record.attempts.append(Attempt(model, f"{type(error).__name__}: {error}"))

    def succeeded(self, model: str, usage: Usage, *, stopped: str | None = None) -> CallRecord:
        """The candidate answered (``stopped``: part of an answer, and why it ended early): charge
        its real cost and remember the call for feedback. Never raises on bad usage (see
        `scope_shared.calls.settling`)."""
        card = self.router.cards[model]
        estimate = self.decision.estimates[model]
        usage_ok, cost, problem = settled_cost(card, usage, estimate)
        self.record.model = model
        self.record.usage = usage_ok
        self.record.cost = cost
        self.record.stopped = stopped
        self.record.attempts.append(Attempt(model))
        info: dict[str, Any] = {"call_id": self.record.call_id, **problem}
        if stopped is not None:
            info.update(partial=True, stopped=stopped)
        if usage_ok is not None and usage_ok.counted:
            info["counted"] = True
        self._settle(
            cost,
            model=model,
            input_tokens=None if usage_ok is None else usage_ok.input_tokens,
            output_tokens=None if usage_ok is None else usage_ok.output_tokens,
            expected_cost=estimate.expected_cost,
            info=info,
        )
        self.router.calls.remember(self.record)
        return self.record

    def succeeded_unseen(self, model: str, charge: bool = True) -> CallRecord:
        """The candidate was handed the work, but its call happens out of sight (a selector picks a
        query engine; the engine calls its own LLM). With ``charge``, charge the *expected* cost
        (flagged ``estimated``); else release the hold and charge nothing. The call is remembered
        for feedback without token counts (``record.usage`` stays None: no made-up lengths)."""
        est = self.decision.estimates[model]
        self.record.model = model
        self.record.cost = est.expected_cost if charge else 0.0
        self.record.attempts.append(Attempt(model))
        if charge:
            self._settle(
                est.expected_cost,
                model=model,
                input_tokens=est.input_tokens,
                output_tokens=est.expected_output_tokens,
                expected_cost=est.expected_cost,
                info={"call_id": self.record.call_id, "estimated": True},
            )
        else:
            self._release()
        self.router.calls.remember(self.record)
        return self.record

    def _settle(self, cost: float, **entry: Any) -> None:
        if self._hold is not None:
            hold, self._hold = self._hold, None
            hold.settle(cost, **entry)
        elif self.budgets is not None:
            self.budgets.charge(cost, **entry)

    def all_failed(self) -> ScopeError | BudgetExceeded:
        """The error to raise when no candidate answered: `AllCandidatesFailed` (every provider
        exception listed, the last one as ``__cause__``), or `BudgetExceeded` when no candidate
        could be held at all."""
        if not self._errors:
            if self._hold_refused is not None:
                return self._hold_refused
            return BudgetExceeded("no candidate fits what is left of the budget")
        return all_failed_error(self._errors)
