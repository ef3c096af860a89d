"""Ledger: concurrent charges and reservations lose nothing (threads and asyncio)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from scope_shared import BudgetExceeded, Ledger
from scope_shared.errors import InvalidBudgetError, ReservationError
from scope_shared.calls import RoutedCall, Usage
from scope_shared.budget.settings import Settings, settings_for_call


def test_threads_charging_at_once_lose_no_update():
    ledger = Ledger(budget=None)
    n_threads, per_thread = 8, 2000
    barrier = threading.Barrier(n_threads)

    def work():
        barrier.wait()
        for _ in range(per_thread):
            ledger.charge(0.001, model="m")

    with ThreadPoolExecutor(n_threads) as ex:
        for f in [ex.submit(work) for _ in range(n_threads)]:
            f.result()
    assert ledger.calls == n_threads * per_thread
    assert ledger.spent == pytest.approx(n_threads * per_thread * 0.001, abs=1e-9)
    assert sum(e.cost for e in ledger.entries) == pytest.approx(ledger.spent, abs=1e-12)


def test_asyncio_tasks_reserving_never_overdraw():
    ledger = Ledger(budget=1.0)
    granted = []

    async def call(i: int):
        try:
            r = ledger.reserve(0.03)
        except BudgetExceeded:
            return
        await asyncio.sleep(0.001 * (i % 5))
        granted.append(i)
        r.settle(0.03, model="m")

    async def main():
        await asyncio.gather(*(call(i) for i in range(100)))

    asyncio.run(main())
    assert len(granted) == 33  # floor(1.0 / 0.03)
    assert ledger.spent == pytest.approx(0.99) and ledger.spent <= ledger.budget
    assert ledger.reserved == pytest.approx(0.0)


def test_threads_reserve_settle_exact_totals():
    ledger = Ledger(budget=5.0)

    def work(i):
        try:
            r = ledger.reserve(0.01)
        except BudgetExceeded:
            return 0.0
        cost = 0.005 + (i % 3) * 0.002
        r.settle(cost, model="m")
        return cost

    with ThreadPoolExecutor(8) as ex:
        costs = list(ex.map(work, range(2000)))
    assert ledger.spent == pytest.approx(sum(costs), abs=1e-9)
    assert ledger.spent <= 5.0 + 0.01
    assert ledger.reserved == pytest.approx(0.0, abs=1e-12)


def test_reservation_cancel_and_double_settle():
    ledger = Ledger(budget=1.0)
    r = ledger.reserve(0.5)
    assert ledger.remaining == pytest.approx(0.5)
    r.cancel()
    assert ledger.remaining == pytest.approx(1.0)
    r2 = ledger.reserve(0.2)
    r2.settle(0.1)
    with pytest.raises(ReservationError, match="already settled"):
        r2.settle(0.1)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "10"])
def test_bad_budget_or_cost(bad):
    with pytest.raises(InvalidBudgetError):
        Ledger(budget=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidBudgetError):
        Ledger().charge(bad)  # type: ignore[arg-type]


def test_routed_call_falls_back_and_charges_real_cost(router):
    ledger = Ledger(budget=1.0, name="chain-a")
    call = RoutedCall.plan(router, "a math problem", settings_for_call(Settings.read(ledger=ledger)))
    call.decision  # noqa: B018
    tried = []
    for model in call.models_to_try():
        tried.append(model)
        if len(tried) == 1:
            call.failed(model, RuntimeError("rate limited"))
            assert ledger.reserved == pytest.approx(0.0)
            continue
        record = call.succeeded(model, Usage(input_tokens=100, output_tokens=200))
        break
    assert tried == list(call.decision.ranking[:2])
    card = router.cards[tried[1]]
    assert ledger.spent == pytest.approx(card.cost(100, 200))
    meta = record.metadata()
    assert meta["model"] == tried[1] and meta["failed"][0]["model"] == tried[0]
    assert "rate limited" in meta["failed"][0]["error"] and meta["ledger"] == "chain-a"
    assert router.calls.get(record.call_id) is record
    qid = router.record_feedback(record.call_id, 1.0)
    assert router.history.text(qid) == "a math problem"


def test_routed_call_skips_models_that_no_longer_fit(router):
    est = router.estimate("a math problem")
    ledger = Ledger(budget=est["mid"].expected_cost * 1.01, mode="raise")
    call = RoutedCall.plan(router, "a math problem", settings_for_call(Settings.read(ledger=ledger)))
    ledger.charge(est["mid"].expected_cost * 0.5)  # someone else spent meanwhile
    models = []
    for m in call.models_to_try():
        models.append(m)
        call.failed(m, RuntimeError("x"))
    assert "strong" not in models and "mid" not in models
    assert isinstance(call.all_failed(), Exception)


def test_cancelled_attempt_releases_its_hold(router):
    from scope_shared.calls.attempts import afirst_answer

    ledger = Ledger(budget=1.0)
    call = RoutedCall.plan(router, "a math problem", settings_for_call(Settings.read(ledger=ledger)))

    async def attempt(model):
        await asyncio.sleep(10)

    async def main():
        task = asyncio.create_task(afirst_answer(call, attempt))
        await asyncio.sleep(0.01)
        assert ledger.reserved > 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert ledger.reserved == pytest.approx(0.0) and ledger.spent == 0.0
    assert "CancelledError" in call.record.attempts[0].error
