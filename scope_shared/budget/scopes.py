"""A knob and a ledger in force for a block of code (``with scope_budget(...)``), framework-agnostic.

Frameworks without a per-run config object (LlamaIndex has no ``RunnableConfig``) still need a way
to say "this pipeline run spends from this ledger, under this knob". A context variable does that:
it follows the code into the functions it calls and into asyncio tasks started inside the block,
and never leaks into other threads or tasks.

Precedence for one call (`settings_in_force`): what the call itself sets, then the innermost
``scope_budget`` block, then what the component was built with, then the router's default knob.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from scope_shared.budget.ledger import Ledger
from scope_shared.budget.shared import as_ledger
from scope_shared.errors import InvalidKnobError
from scope_shared.routing.knobs import Knob, resolve_knob


@dataclass(frozen=True)
class BudgetScope:
    """The knob and ledger a ``scope_budget`` block puts in force (``None`` = not set by the block)."""

    knob: Knob | None = None
    ledger: Ledger | None = None


_CURRENT: ContextVar[BudgetScope | None] = ContextVar("scope_budget", default=None)


def current_budget() -> BudgetScope | None:
    """The innermost ``scope_budget`` block in force here, if any."""
    return _CURRENT.get()


def pick_knob(knob: Knob | None = None, **settings: Any) -> Knob | None:
    """One knob from ``knob=`` or one keyword setting (``max_cost=...``); ``None`` if neither is set."""
    if knob is not None:
        if not isinstance(knob, Knob):
            raise InvalidKnobError(f"knob must be a scope_shared.Knob, got {type(knob).__name__}")
        if any(v is not None for v in settings.values()):
            raise InvalidKnobError("set one knob at a time: knob= together with a knob setting")
        return knob
    return resolve_knob(None, **settings)


def _check_ledger(ledger: Any) -> Ledger | None:
    return as_ledger(ledger)


@contextmanager
def scope_budget(
    *,
    ledger: Ledger | None = None,
    knob: Knob | None = None,
    max_cost: float | None = None,
    tradeoff: float | None = None,
    min_accuracy: float | None = None,
    alpha: float | None = None,
) -> Iterator[BudgetScope]:
    """Put a ledger and/or a knob in force for every routed call made inside the block.

    Set at most one knob (``knob=`` or one of ``max_cost``/``tradeoff``/``min_accuracy``/``alpha``).
    A nested block overrides what it sets and inherits the rest from the enclosing block.

    Example::

        with scope_budget(ledger=Ledger(budget=0.05), min_accuracy=0.8):
            query_engine.query("...")
    """
    new_knob = pick_knob(knob, max_cost=max_cost, tradeoff=tradeoff, min_accuracy=min_accuracy, alpha=alpha)
    outer = _CURRENT.get() or BudgetScope()
    scope = BudgetScope(
        knob=new_knob if new_knob is not None else outer.knob,
        ledger=_check_ledger(ledger) if ledger is not None else outer.ledger,
    )
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)


def settings_in_force(
    default_knob: Knob | None = None,
    default_ledger: Ledger | None = None,
    *,
    knob: Knob | None = None,
    ledger: Ledger | None = None,
    max_cost: float | None = None,
    tradeoff: float | None = None,
    min_accuracy: float | None = None,
    alpha: float | None = None,
) -> tuple[Knob | None, Ledger | None]:
    """The knob and ledger for one call: the call's own, else the block's, else the defaults given.

    A ``None`` knob means "the router's default knob" (``Router.route`` applies it).
    """
    call_knob = pick_knob(knob, max_cost=max_cost, tradeoff=tradeoff, min_accuracy=min_accuracy, alpha=alpha)
    block = _CURRENT.get() or BudgetScope()
    chosen_knob = _first(call_knob, block.knob, default_knob)
    chosen_ledger = _first(_check_ledger(ledger), block.ledger, _check_ledger(default_ledger))
    return chosen_knob, chosen_ledger


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
