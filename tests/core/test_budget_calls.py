"""Budgets through a routed call (core, no framework): caps, bounded overshoot, max_cost, total settling,
nesting, the fallback filter."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from scope_shared import AllCandidatesFailed, BudgetExceeded, Ledger, scope_budget
from scope_shared.budget import Budgets, budgets_in_force
from scope_shared.calls import RoutedCall, Usage, afirst_answer, first_answer, hold_amount, prompt_tokens
from scope_shared.budget.settings import Settings, settings_for_call

MATH = "a math problem"


def _usage_for(call: RoutedCall, model: str, factor: float = 1.0) -> Usage:
    """The tokens a call 'really' used: its estimate's, times ``factor``."""
    est = call.decision.estimates[model]
    return Usage(est.input_tokens * factor, est.expected_output_tokens * factor)


def _run(router, ledger, factor: float = 1.0, query: str = MATH, **plan) -> str:
    call = RoutedCall.plan(router, query, settings_for_call(Settings.read(ledger=ledger)), **plan)
    model, _ = first_answer(call, lambda m: m)
    call.succeeded(model, _usage_for(call, model, factor))
    return model


# ---------------------------------------------------------------- a cap by default
def test_a_budget_is_a_cap_by_default(router):
    ledger = Ledger(0.01)
    assert ledger.mode == "raise"
    calls = 0
    with pytest.raises(BudgetExceeded) as stop:
        while True:
            _run(router, ledger)
            calls += 1
    assert calls > 0 and ledger.spent <= ledger.budget and ledger.reserved == 0
    assert "cheapest candidate" in str(stop.value) and stop.value.mode == "raise"


def test_a_soft_budget_keeps_going_and_reports_its_overshoot(router, caplog):
    ledger = Ledger(0.0001, mode="soft", name="soft")
    with caplog.at_level(logging.WARNING, logger="scope_shared.budget"):
        models = [_run(router, ledger) for _ in range(30)]
    assert models[-1] == "cheap" and ledger.spent > ledger.budget
    assert ledger.overshoot.overdraw == pytest.approx(ledger.spent - ledger.budget)
    assert ledger.summary()["overshoot"]["overdraw"] > 0
    assert "budget 'soft' overdrawn" in caplog.text


def test_an_end_mode_budget_stops_with_its_mode(router):
    ledger = Ledger(0.0, mode="end", name="run")
    with pytest.raises(BudgetExceeded) as stop:
        RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=ledger)))
    assert stop.value.mode == "end" and stop.value.ledger == "run"


def test_real_costs_within_the_holds_never_overdraw(router):
    ledger = Ledger(0.05)
    rng = random.Random(0)
    with pytest.raises(BudgetExceeded):
        for i in range(10_000):
            _run(router, ledger, factor=rng.uniform(0.2, 1.0), query=f"{['math', 'code', 'trivia'][i % 3]} q {i}")
            assert ledger.spent <= ledger.budget
    assert ledger.overshoot.calls == 0 and ledger.reserved == 0


def _probe(router, ledger: Ledger, n: int = 200, concurrency: int = 4, seed: int = 0) -> int:
    """asyncio tasks whose real cost is 1-3x what they held; returns how many answered."""
    rng = random.Random(seed)
    gate = asyncio.Semaphore(concurrency)
    answered = 0

    async def one(i: int) -> None:
        nonlocal answered
        async with gate:
            try:
                call = RoutedCall.plan(router, f"{['math', 'code', 'trivia'][i % 3]} question {i}", settings_for_call(Settings.read(ledger=ledger)))

                async def attempt(m: str) -> str:
                    await asyncio.sleep(0)
                    return m

                model, _ = await afirst_answer(call, attempt)
            except BudgetExceeded:
                return
            call.succeeded(model, _usage_for(call, model, rng.uniform(1.0, 3.0)))
            answered += 1

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))

    asyncio.run(main())
    return answered


def test_billing_above_the_hold_is_bounded_recorded_and_visible(router):
    budget = 0.2
    learning, fixed = Ledger(budget), Ledger(budget, max_hold_factor=1.0)
    assert _probe(router, learning) > 0 and _probe(router, fixed) > 0
    largest_hold = max(e.expected_cost for e in fixed.entries)
    for ledger in (learning, fixed):
        o = ledger.overshoot
        assert o.calls > 0 and o.excess > 0 and 1.0 < o.max_ratio <= 3.0  # recorded
        # bounded: only calls in flight when the budget ran out (4 at a time) can overdraw,
        # each by at most (3 - 1) x its hold
        assert o.overdraw <= 4 * 2 * largest_hold
        assert ledger.summary()["overshoot"]["overdraw"] == pytest.approx(o.overdraw)  # visible
    # the learning ledger holds up to 3x once it has seen 3x bills, so it overdraws less
    assert learning.hold_factor == pytest.approx(learning.overshoot.max_ratio)
    assert learning.overshoot.overdraw < fixed.overshoot.overdraw


def test_holds_grow_with_the_learned_factor(router):
    ledger = Ledger(10.0)
    _run(router, ledger, factor=2.5)
    call = RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=ledger)))
    next(call.models_to_try())
    est = call.decision.chosen
    assert ledger.reserved == pytest.approx(hold_amount(est, 2.5)) == pytest.approx(2.5 * est.expected_cost)
    call.failed(call.decision.model, RuntimeError("x"))


# ---------------------------------------------------------------- the prompt that is sent
def test_the_hold_prices_the_whole_prompt(router):
    context = "retrieved context " * 400
    n = prompt_tokens(["be brief", context, MATH], router.count_tokens)
    assert n == router.count_tokens("be brief") + router.count_tokens(context) + router.count_tokens(MATH) + 3 * 4
    ledger = Ledger(10.0)
    call = RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=ledger)), prompt_tokens=n)
    model = next(call.models_to_try())
    est = call.decision.estimates[model]
    assert est.input_tokens == n
    assert ledger.reserved == pytest.approx(router.cards[model].cost(n, est.expected_output_tokens))
    short = RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=Ledger(10.0))))
    assert short.decision.estimates[model].expected_cost < est.expected_cost
    call.failed(model, RuntimeError("x"))


# ---------------------------------------------------------------- max_cost no candidate fits
def test_max_cost_below_every_candidate_is_flagged_and_explained(router):
    d = router.route(MATH, knob={"max_cost": 1e-12})
    assert d.over_max_cost and d.model == "cheap" and not d.fallback_to_cheapest
    assert "no candidate fits max_cost" in d.explanation and "0 candidate" not in d.explanation
    assert d.summary()["over_max_cost"] is True
    soft = router.route(MATH, knob={"max_cost": 1e-12}, ledger=Ledger(1.0, mode="soft"))
    assert soft.over_max_cost and soft.model == "cheap"
    with pytest.raises(BudgetExceeded, match="fits no candidate"):
        router.route(MATH, knob={"max_cost": 1e-12}, ledger=Ledger(1.0))
    assert not router.route(MATH, knob={"max_cost": 1.0}).over_max_cost


# ---------------------------------------------------------------- settling is total
@pytest.mark.parametrize(
    "bad", [Usage(float("nan"), 10), Usage(-5, 10), Usage(10, float("inf")), Usage(1e12, 1), "not usage"]
)
def test_bad_reported_usage_settles_at_the_estimate_flagged(router, bad):
    ledger = Ledger(1.0)
    call = RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=ledger)))
    model = next(call.models_to_try())
    record = call.succeeded(model, bad)  # type: ignore[arg-type]
    (entry,) = ledger.entries
    assert ledger.reserved == 0 and entry.cost == pytest.approx(call.decision.estimates[model].expected_cost)
    assert "usage_invalid" in entry.info and record.usage is None and record.cost == entry.cost


def test_every_path_releases_the_hold_exactly_once(router):
    ledger = Ledger(1.0)
    for outcome in ("answer", "error", "cancel", "dropped"):
        call = RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=ledger)))
        model = next(call.models_to_try())
        assert ledger.reserved > 0
        if outcome == "answer":
            call.succeeded(model, _usage_for(call, model))
        elif outcome == "error":
            call.failed(model, RuntimeError("down"))
        elif outcome == "cancel":
            call.failed(model, asyncio.CancelledError())
        else:
            del call
        assert ledger.reserved == 0
    assert ledger.calls == 1


# ---------------------------------------------------------------- nesting
def test_a_call_is_charged_to_every_enclosing_budget(router):
    team = Ledger(1.0, name="team")
    chain = Ledger(0.5, name="chain", parent=team)
    block = Ledger(0.8, name="block")
    with scope_budget(ledger=block):
        with scope_budget(ledger=chain):
            budgets = budgets_in_force()
            assert [lv.name for lv in budgets.ledgers] == ["chain", "team", "block"]
            _run(router, budgets)
    assert chain.spent == team.spent == block.spent > 0
    assert chain.calls == team.calls == block.calls == 1


def test_the_tightest_enclosing_budget_shapes_and_stops_the_call(router):
    strong = router.estimate(MATH)["strong"].expected_cost
    outer = Ledger(strong / 2, name="outer")
    with scope_budget(ledger=outer):
        d = RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=Ledger(10.0, name="inner")))).decision
    assert d.model != "strong" and d.budget_left == pytest.approx(strong / 2)
    with pytest.raises(BudgetExceeded) as stop:
        RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=Budgets(Ledger(10.0), Ledger(0.0, name="empty")))))
    assert stop.value.ledger == "empty"


# ---------------------------------------------------------------- which errors move on
class AuthError(Exception):
    pass


def test_errors_outside_fallback_on_propagate_at_once(router):
    tried = []

    def attempt(m):
        tried.append(m)
        raise AuthError("bad key")

    ledger = Ledger(1.0)
    call = RoutedCall.plan(router, MATH, settings_for_call(Settings.read(ledger=ledger)), fallback_on=(ConnectionError,))
    with pytest.raises(AuthError):
        first_answer(call, attempt)
    assert len(tried) == 1 and ledger.reserved == 0 and ledger.spent == 0


def test_all_candidates_failed_keeps_every_provider_error(router):
    def attempt(m):
        raise ConnectionError(f"{m} unreachable")

    call = RoutedCall.plan(router, MATH, fallback_on=(ConnectionError,))
    with pytest.raises(AllCandidatesFailed) as err:
        first_answer(call, attempt)
    assert [m for m, _ in err.value.errors] == list(call.decision.ranking)
    assert isinstance(err.value.__cause__, ConnectionError)
    assert str(call.decision.ranking[-1]) in str(err.value.__cause__)
    assert not isinstance(err.value, ValueError) and isinstance(err.value, RuntimeError)
