"""A call's settings, resolved once: the knob and the budgets one routed call runs under.

Every integration (and the core's own callers) asks `settings_for_call`; nothing else decides which
knob wins. The precedence, for the knob:

1. what the call itself sets (LangChain: an agent run's ``context``, then ``configurable``;
   LlamaIndex: the call's keyword arguments);
2. the innermost ``scope_budget`` block around the call;
3. what the component was built with (``SCOPERouter(min_accuracy=...)``, ``SCOPELLM(knob=...)``);
4. the router's ``default_knob`` (`CallSettings.knob` is then ``None``; `Router.route` applies it).

Budgets nest rather than override (`scope_shared.budget.scopes.budgets_in_force`): a call is
charged to its own ledger (the call's, else the innermost block's) and to every enclosing block's;
the component's ledger is used only when neither the call nor a block brings one.

Each layer is validated once, where it enters (`Settings.read`: a component at construction, a
call's keywords or ``configurable`` when the call starts, a block when it opens).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scope_shared.budget.nesting import Budgets, LedgerLike, check_ledger
from scope_shared.budget.scopes import BudgetScope, budgets_in_force, current_budget
from scope_shared.routing.knobs import Knob, knob_in


@dataclass(frozen=True)
class Settings:
    """What one layer sets for a call: a knob and a ledger (``None``: not set here). Make one with
    `Settings.read`, which validates."""

    knob: Knob | None = None
    ledger: LedgerLike | None = None

    @classmethod
    def read(cls, layer: Mapping[str, Any] | None = None, *, ledger_key: str = "ledger", **values: Any) -> Settings:
        """The settings of ``layer`` and ``values`` together (a call's keywords, a ``configurable``,
        a component's arguments): at most one knob (``knob=`` or one kind key such as
        ``min_accuracy``), and a ledger under ``ledger_key`` (a ledger or a ``postgresql://`` URL).
        Other keys are ignored; bad values raise `InvalidKnobError` (a knob) or `InvalidBudgetError` (a ledger)."""
        merged = {**(layer or {}), **values}
        what = "ledger" if ledger_key == "ledger" else repr(ledger_key)
        return cls(knob_in(merged), check_ledger(merged.get(ledger_key), what))


@dataclass(frozen=True)
class CallSettings:
    """The knob (``None``: the router's default) and the budgets (``None``: none) of one call."""

    knob: Knob | None
    budgets: Budgets | None


def settings_for_call(*call: Settings | None, built: Settings | None = None) -> CallSettings:
    """The settings one call runs under (module docstring): ``call`` layers first to last (the first
    that sets a knob, or a ledger, wins), then the innermost ``scope_budget`` block, then ``built``
    (the component's own settings)."""
    block = current_budget() or BudgetScope()
    layers = [s for s in call if s is not None]
    built = built or Settings()
    knob = _first(*(s.knob for s in layers), block.knob, built.knob)
    ledger = _first(*(s.ledger for s in layers))
    return CallSettings(knob=knob, budgets=budgets_in_force(ledger, built.ledger))


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
