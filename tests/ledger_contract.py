"""The ledger contract: behaviour every `BaseLedger` implementation must have, as reusable checks.

Each check takes ``make(budget=..., name=..., mode=..., parent=..., max_hold_factor=...)``, a factory
for the implementation under test, so another store (e.g. a PostgreSQL ledger) runs the same
checks: ``@pytest.mark.parametrize("check", CHECKS)`` then ``check(make)``.
"""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from scope_shared import BudgetExceeded
from scope_shared.errors import InvalidBudgetError, InvalidUsageError, ReservationError
from scope_shared.budget import BaseLedger, Budgets
from scope_shared.budget.base import MAX_USD

Make = Callable[..., BaseLedger]


def unchanged(ledger: BaseLedger, spent: float = 0.0, reserved: float = 0.0, calls: int = 0) -> bool:
    return ledger.spent == pytest.approx(spent) and ledger.reserved == pytest.approx(reserved) and ledger.calls == calls


def check_reserve_within_and_beyond(make: Make) -> None:
    led = make(budget=1.0)
    r = led.reserve(0.4)
    assert led.remaining == pytest.approx(0.6) and led.reserved == pytest.approx(0.4)
    with pytest.raises(BudgetExceeded) as stop:
        led.reserve(0.7)
    assert stop.value.needed == pytest.approx(0.7) and stop.value.left == pytest.approx(0.6)
    assert unchanged(led, reserved=0.4)
    r.cancel()
    assert unchanged(led) and led.remaining == 1.0


def check_settle_exactly_once(make: Make) -> None:
    led = make(budget=1.0)
    r = led.reserve(0.3)
    entry = r.settle(0.25, model="m", input_tokens=10, output_tokens=20)
    assert entry.cost == 0.25 and entry.expected_cost == pytest.approx(0.3)
    assert unchanged(led, spent=0.25, calls=1)
    with pytest.raises(ReservationError):
        r.settle(0.25)
    r.cancel()  # a no-op once settled
    assert unchanged(led, spent=0.25, calls=1)
    c = led.reserve(0.1)
    c.cancel()
    c.cancel()
    with pytest.raises(ReservationError):
        c.settle(0.1)
    assert unchanged(led, spent=0.25, calls=1)


BAD_COSTS: list[Any] = [float("nan"), -0.01, float("inf"), "0.1", True, None, 2 * MAX_USD]
BAD_FIELDS: list[dict[str, Any]] = [
    {"surprise": 1},
    {"input_tokens": float("nan")},
    {"output_tokens": -5},
    {"model": 3},
    {"info": "not a mapping"},
]


def check_bad_usage_changes_nothing(make: Make) -> None:
    led = make(budget=1.0)
    r = led.reserve(0.2)
    for bad in BAD_COSTS:
        with pytest.raises(InvalidUsageError):
            r.settle(bad)
    for fields in BAD_FIELDS:
        with pytest.raises(InvalidUsageError):
            r.settle(0.1, **fields)
    assert r.open and unchanged(led, reserved=0.2)
    r.settle(0.1, model="m")  # still settles right afterwards
    assert unchanged(led, spent=0.1, calls=1)
    for bad in BAD_COSTS:
        with pytest.raises(InvalidUsageError):
            led.charge(bad)
        with pytest.raises(InvalidUsageError):
            led.reserve(bad)
    assert unchanged(led, spent=0.1, calls=1)


def check_sums_cannot_overflow(make: Make) -> None:
    led = make(budget=None)
    with pytest.raises(InvalidUsageError):
        led.charge(1e308)
    for _ in range(3):
        led.charge(MAX_USD)
    assert math.isfinite(led.spent) and led.spent == pytest.approx(3 * MAX_USD)


def check_nesting_holds_and_charges_every_level(make: Make) -> None:
    team = make(budget=1.0, name="team")
    chain = make(budget=0.5, name="chain", parent=team)
    assert chain.lineage() == (chain, team)
    r = chain.reserve(0.3)
    assert chain.reserved == pytest.approx(0.3) and team.reserved == pytest.approx(0.3)
    with pytest.raises(BudgetExceeded) as stop:
        chain.reserve(0.3)  # the chain's own cap
    assert stop.value.ledger == "chain"
    assert team.reserved == pytest.approx(0.3)  # the failed hold left the team as it was
    r.settle(0.2, model="m")
    assert chain.spent == pytest.approx(0.2) and team.spent == pytest.approx(0.2)
    chain.charge(0.1, model="m")
    assert team.spent == pytest.approx(0.3) and team.calls == 2
    sibling = make(budget=5.0, name="sibling", parent=team)
    with pytest.raises(BudgetExceeded) as stop:
        sibling.reserve(0.8)  # fits the sibling, not the team above it
    assert stop.value.ledger == "team" and sibling.reserved == 0
    assert chain.room == pytest.approx(0.2)


def check_modes(make: Make) -> None:
    assert make(budget=1.0).mode == "raise"  # a budget is a cap by default
    with pytest.raises(InvalidBudgetError):
        make(budget=1.0, mode="sometimes")
    soft = make(budget=0.1, mode="soft")
    with pytest.raises(BudgetExceeded):
        soft.reserve(0.5)
    soft.reserve(0.5, force=True).settle(0.5)  # a soft budget may be overdrawn, and says so
    assert soft.overshoot.overdraw == pytest.approx(0.4)
    for mode in ("raise", "end"):
        capped = make(budget=0.1, mode=mode)
        with pytest.raises(BudgetExceeded) as stop:
            capped.reserve(0.5, force=True)  # force never overdraws a cap
        assert stop.value.mode == mode
        assert capped.reserved == 0


def check_overshoot_is_recorded_and_grows_holds(make: Make) -> None:
    led = make(budget=1.0, max_hold_factor=2.5)
    assert led.hold_factor == 1.0 and led.overshoot.calls == 0
    led.reserve(0.1).settle(0.05)
    assert led.overshoot.calls == 0
    led.reserve(0.1).settle(0.3)  # billed 3x the hold
    o = led.overshoot
    assert o.calls == 1 and o.excess == pytest.approx(0.2) and o.max_ratio == pytest.approx(3.0)
    assert led.hold_factor == 2.5  # capped at max_hold_factor
    assert led.room == pytest.approx((1.0 - 0.35) / 2.5)
    led.reserve(0.2).settle(0.9)
    assert led.overshoot.overdraw == pytest.approx(0.25)
    assert led.summary()["overshoot"]["overdraw"] == pytest.approx(0.25)


def check_racing_settle_and_cancel_close_once(make: Make) -> None:
    led = make(budget=100.0)
    for _ in range(50):
        r = led.reserve(1.0)
        barrier = threading.Barrier(4)
        outcomes: list[str] = []

        def race(settle: bool) -> None:
            barrier.wait()
            try:
                r.settle(0.5) if settle else r.cancel()
                outcomes.append("settled" if settle else "cancelled")
            except ReservationError:
                outcomes.append("refused")

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(race, [True, True, False, False]))
        assert led.reserved == 0
    assert led.calls == led.spent / 0.5 and led.calls <= 50


def check_dropped_reservation_is_released(make: Make) -> None:
    led = make(budget=1.0)
    led.reserve(0.6)  # never settled, never cancelled
    gc.collect()
    assert led.reserved == 0 and led.remaining == 1.0


def check_summary_and_per_model(make: Make) -> None:
    led = make(budget=2.0, name="run")
    led.reserve(0.5).settle(0.4, model="a")
    led.charge(0.1, model="b")
    led.charge(0.2, model="a")
    assert led.per_model() == {"a": {"calls": 2, "cost": pytest.approx(0.6)}, "b": {"calls": 1, "cost": pytest.approx(0.1)}}
    s = led.summary()
    assert s["name"] == "run" and s["spent"] == pytest.approx(0.7) and s["remaining"] == pytest.approx(1.3)
    assert [e.model for e in led.entries] == ["a", "b", "a"]


def check_budgets_of_one_call(make: Make) -> None:
    team = make(budget=1.0, name="team")
    block = make(budget=0.4, name="block")
    call = make(budget=None, name="call", parent=team)
    b = Budgets(call, block, team)  # team appears twice (as call's parent): held once
    assert [lv.name for lv in b.ledgers] == ["call", "team", "block"]
    r = b.reserve(0.3)
    assert team.reserved == pytest.approx(0.3) and block.reserved == pytest.approx(0.3)
    with pytest.raises(BudgetExceeded):
        b.reserve(0.2)  # the block has 0.1 left
    assert team.reserved == pytest.approx(0.3) and call.reserved == pytest.approx(0.3)
    r.settle(0.3)
    assert team.spent == block.spent == call.spent == pytest.approx(0.3)


CHECKS = [
    check_reserve_within_and_beyond,
    check_settle_exactly_once,
    check_bad_usage_changes_nothing,
    check_sums_cannot_overflow,
    check_nesting_holds_and_charges_every_level,
    check_modes,
    check_overshoot_is_recorded_and_grows_holds,
    check_racing_settle_and_cancel_close_once,
    check_dropped_reservation_is_released,
    check_summary_and_per_model,
    check_budgets_of_one_call,
]
