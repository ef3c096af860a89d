"""Budgets: the ledger a chain or agent run spends from, nested budgets, and ``scope_budget`` blocks.

- `base`: the ledger interface (`BaseLedger`, `Reservation`, `LedgerEntry`, modes, `Overshoot`);
- `ledger`: `Ledger`, the in-memory implementation;
- `levels` / `nesting`: the budgets one call spends from (`Budgets`), held and charged together;
- `scopes`: ``with scope_budget(ledger=..., knob...)`` blocks (nesting);
- `settings`: a call's knob and budgets, resolved once (`settings_for_call`: the precedence rules).
"""

from scope_shared.budget.base import (
    MODES,
    BaseLedger,
    BudgetMode,
    BudgetView,
    LedgerEntry,
    LedgerState,
    Overshoot,
    Reservation,
)
from scope_shared.budget.ledger import Ledger
from scope_shared.budget.nesting import Budgets, LedgerLike, nest
from scope_shared.budget.scopes import (
    BudgetScope,
    budgets_in_force,
    current_budget,
    scope_budget,
)
from scope_shared.budget.settings import CallSettings, Settings, settings_for_call

__all__ = [
    "MODES",
    "BaseLedger",
    "BudgetMode",
    "BudgetScope",
    "BudgetView",
    "CallSettings",
    "Budgets",
    "Ledger",
    "LedgerEntry",
    "LedgerLike",
    "LedgerState",
    "Overshoot",
    "Reservation",
    "Settings",
    "budgets_in_force",
    "current_budget",
    "nest",
    "scope_budget",
    "settings_for_call",
]
