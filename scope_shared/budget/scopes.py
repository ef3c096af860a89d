"""A knob and a ledger in force for a block of code (``with scope_budget(...)``), framework-agnostic.

Frameworks without a per-run config object (LlamaIndex has no ``RunnableConfig``) still need a way
to say "this pipeline run spends from this ledger, under this knob". A context variable does that:
it follows the code into the functions it calls and into asyncio tasks started inside the block,
and never leaks into other threads or tasks.

Which knob and ledger a call uses (the block's among others) is decided in one place,
`scope_shared.budget.settings.settings_for_call`.

Budgets nest rather than override: a call is charged to its own ledger (the call's, else the
innermost block's) *and* to the ledger of every enclosing block. A component's own ledger (the
one it was built with) is a default, used only when neither the call nor a block brings one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from scope_shared.budget.nesting import Budgets, LedgerLike, check_ledger
from scope_shared.routing.knobs import Knob, KnobLike, knob_in


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


@contextmanager
def scope_budget(
    *,
    ledger: LedgerLike | None = None,
    knob: KnobLike | None = None,
    max_cost: float | None = None,
    tradeoff: float | None = None,
    min_accuracy: float | None = None,
    accuracy_margin: float | None = None,
    alpha: float | None = None,
) -> Iterator[BudgetScope]:
    """Put a ledger and/or a knob in force for every routed call made inside the block, in the
    core and both integrations alike.

    Set at most one knob (``knob=``, a `Knob` or ``{"min_accuracy": 0.8}``, or one of
    ``max_cost``/``tradeoff``/``min_accuracy``/``accuracy_margin``/``alpha``).
    A nested block's knob overrides the enclosing block's; its ledger *nests*: calls inside it are
    charged to its ledger and to every enclosing block's.

    Example::

        with scope_budget(ledger=Ledger(budget=0.05), min_accuracy=0.8):
            query_engine.query("...")
    """
    new_knob = knob_in({"knob": knob, "max_cost": max_cost, "tradeoff": tradeoff, "min_accuracy": min_accuracy,
                        "accuracy_margin": accuracy_margin, "alpha": alpha})
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


def budgets_in_force(ledger: LedgerLike | None = None, default: LedgerLike | None = None) -> Budgets | None:
    """What a call is charged to: ``ledger`` (the call's own) and every ``scope_budget`` block's
    ledger around it; with neither, the component's ``default``."""
    ledger, default = check_ledger(ledger), check_ledger(default)
    block = _CURRENT.get() or BudgetScope()
    if ledger is None and block.ledger is None:
        return Budgets.of(default)
    return Budgets.of(ledger, block.ledger, *block.enclosing)
