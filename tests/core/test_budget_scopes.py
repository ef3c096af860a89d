"""scope_budget (core, scope_shared.budget.scopes): a knob and ledger in force for a block of code."""

from __future__ import annotations

import asyncio
import threading

import pytest

from llamaindex_scope import current_budget, scope_budget
from scope_shared import Ledger
from scope_shared.errors import InvalidBudgetError, InvalidKnobError
from scope_shared.routing import make_knob
from scope_shared.budget.settings import Settings, settings_for_call


def test_block_sets_and_restores():
    assert current_budget() is None
    ledger = Ledger(1.0)
    with scope_budget(ledger=ledger, min_accuracy=0.8) as scope:
        assert current_budget() is scope
        assert scope.knob == make_knob("min_accuracy", 0.8) and scope.ledger is ledger
    assert current_budget() is None


def test_nested_blocks_override_what_they_set_and_inherit_the_rest():
    outer, inner = Ledger(1.0, name="outer"), Ledger(1.0, name="inner")
    with scope_budget(ledger=outer, tradeoff=5.0):
        with scope_budget(alpha=0.2) as s:
            assert s.ledger is outer and s.knob == make_knob("alpha", 0.2)
        with scope_budget(ledger=inner) as s:
            assert s.ledger is inner and s.knob == make_knob("tradeoff", 5.0)
        assert current_budget().ledger is outer


def test_precedence_call_then_block_then_default():
    default_knob, default_ledger = make_knob("alpha", 0.5), Ledger(1.0, name="default")
    built = Settings.read(knob=default_knob, ledger=default_ledger)
    s = settings_for_call(built=built)
    assert s.knob == default_knob and s.budgets.ledgers == (default_ledger,)
    assert settings_for_call().knob is None  # nothing set: the router's default knob applies
    block_ledger = Ledger(1.0, name="block")
    with scope_budget(ledger=block_ledger, max_cost=0.01):
        s = settings_for_call(built=built)
        assert s.knob == make_knob("max_cost", 0.01) and s.budgets.ledgers == (block_ledger,)
        call_ledger = Ledger(1.0)
        s = settings_for_call(Settings.read(min_accuracy=0.7, ledger=call_ledger), built=built)
        # the call's own ledger is innermost; the block around it is charged too (budgets nest)
        assert s.knob == make_knob("min_accuracy", 0.7) and s.budgets.ledgers == (call_ledger, block_ledger)


def test_a_block_is_restored_after_an_exception():
    with pytest.raises(RuntimeError):
        with scope_budget(alpha=0.1):
            raise RuntimeError("boom")
    assert current_budget() is None


async def test_blocks_do_not_leak_between_tasks_or_threads():
    async def inside(name: str) -> str | None:
        with scope_budget(ledger=Ledger(1.0, name=name)):
            await asyncio.sleep(0.01)
            return current_budget().ledger.name

    assert await asyncio.gather(inside("a"), inside("b")) == ["a", "b"]
    seen = []
    with scope_budget(alpha=0.3):
        t = threading.Thread(target=lambda: seen.append(current_budget()))
        t.start()
        t.join()
    assert seen == [None]


def test_bad_settings_raise_knob_errors():
    with pytest.raises(InvalidKnobError):
        with scope_budget(max_cost=1.0, alpha=0.5):
            pass
    with pytest.raises(InvalidKnobError):
        with scope_budget(knob=make_knob("alpha", 0.5), tradeoff=1.0):
            pass
    with pytest.raises(InvalidBudgetError, match="Ledger"):
        with scope_budget(ledger=5.0):  # type: ignore[arg-type]
            pass
    with pytest.raises(InvalidKnobError):
        with scope_budget(min_accuracy=1.5):
            pass
    with pytest.raises(InvalidKnobError):
        Settings.read(knob="alpha")
    with pytest.raises(InvalidKnobError):
        Settings.read(knob={"alpha": 0.5, "tradeoff": 1.0})
    with pytest.raises(InvalidBudgetError):
        Settings.read(ledger="wallet")
    assert Settings.read(knob={"alpha": 0.5}).knob == make_knob("alpha", 0.5)
