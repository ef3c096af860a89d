"""A knob and a ledger in force for a block of code (``with scope_budget(...)``), framework-agnostic.

Frameworks without a per-run config object (LlamaIndex has no ``RunnableConfig``) still need a way
to say "this pipeline run spends from this ledger, under this knob". A context variable does that:
it follows the code into the functions it calls and into asyncio tasks started inside the block,
and never leaks into other threads or tasks.

Precedence for one call (`settings_in_force`): what the call itself sets, then the innermost
``scope_budget`` block, then what the component was built with, then the router's default knob.

Budgets nest rather than override: a call is charged to its own ledger (the call's, else the
innermost block's) *and* to the ledger of every enclosing block. A component's own ledger (the
one it was built with) is a default, used only when neither the call nor a block brings one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from scope_shared.budget.nesting import Budgets, LedgerLike, check_ledger
from scope_shared.errors import InvalidKnobError
from scope_shared.routing.knobs import Knob, resolve_knob


@dataclass(frozen=True)
class BudgetScope:
    """The knob and ledger a ``scope_budget`` block puts in force (``None`` = not set by the block).

    ``ledger`` is the innermost block's ledger; ``enclosing`` the ledgers of the blocks around it,
    innermost first: a call inside the block is charged to all of them.
    """

    knob: Knob | None = None
    ledger: LedgerLike | None = None
    enclosing: tuple[LedgerLike, ...] = ()

    @property
    def budgets(self) -> Budgets | None:
        """Every ledger a call made in this block is charged to."""
        return Budgets.of(self.ledger, *self.enclosing)


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


@contextmanager
def scope_budget(
    *,
    ledger: LedgerLike | None = None,
    knob: Knob | None = None,
    max_cost: float | None = None,
    tradeoff: float | None = None,
    min_accuracy: float | None = None,
    alpha: float | None = None,
) -> Iterator[BudgetScope]:
    """Put a ledger and/or a knob in force for every routed call made inside the block.

    Set at most one knob (``knob=`` or one of ``max_cost``/``tradeoff``/``min_accuracy``/``alpha``).
    A nested block's knob overrides the enclosing block's; its ledger *nests*: calls inside it are
    charged to its ledger and to every enclosing block's.

    Example::

        with scope_budget(ledger=Ledger(budget=0.05), min_accuracy=0.8):
            query_engine.query("...")
    """
    new_knob = pick_knob(knob, max_cost=max_cost, tradeoff=tradeoff, min_accuracy=min_accuracy, alpha=alpha)
    outer = _CURRENT.get() or BudgetScope()
    ledger = check_ledger(ledger)
    if ledger is None or outer.ledger is None or ledger is outer.ledger:
        inner, enclosing = (ledger if ledger is not None else outer.ledger), outer.enclosing
    else:
        inner, enclosing = ledger, (outer.ledger, *outer.enclosing)
    scope = BudgetScope(knob=new_knob if new_knob is not None else outer.knob, ledger=inner, enclosing=enclosing)
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)


def settings_in_force(
    default_knob: Knob | None = None,
    default_ledger: LedgerLike | None = None,
    *,
    knob: Knob | None = None,
    ledger: LedgerLike | None = None,
    max_cost: float | None = None,
    tradeoff: float | None = None,
    min_accuracy: float | None = None,
    alpha: float | None = None,
) -> tuple[Knob | None, Budgets | None]:
    """The knob and the budgets for one call: the call's own, else the block's, else the defaults.

    A ``None`` knob means "the router's default knob" (``Router.route`` applies it). The budgets
    are `budgets_in_force` of the call's ledger.
    """
    call_knob = pick_knob(knob, max_cost=max_cost, tradeoff=tradeoff, min_accuracy=min_accuracy, alpha=alpha)
    block = _CURRENT.get() or BudgetScope()
    return _first(call_knob, block.knob, default_knob), budgets_in_force(ledger, default_ledger)


def budgets_in_force(ledger: LedgerLike | None = None, default: LedgerLike | None = None) -> Budgets | None:
    """What a call is charged to: ``ledger`` (the call's own) and every ``scope_budget`` block's
    ledger around it; with neither, the component's ``default``."""
    ledger, default = check_ledger(ledger), check_ledger(default)
    block = _CURRENT.get() or BudgetScope()
    if ledger is None and block.ledger is None:
        return Budgets.of(default)
    return Budgets.of(ledger, block.ledger, *block.enclosing)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
