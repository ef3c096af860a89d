"""Budgets: the ledger a chain or agent run spends from, nested budgets, and ``scope_budget`` blocks.

- `base`: the ledger interface (`BaseLedger`, `Reservation`, `LedgerEntry`, modes, `Overshoot`);
- `ledger`: `Ledger`, the in-memory implementation;
- `levels` / `nesting`: the budgets one call spends from (`Budgets`), held and charged together;
- `scopes`: ``with scope_budget(ledger=..., knob...)`` blocks (nesting) and the precedence rules.
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
    pick_knob,
    scope_budget,
    settings_in_force,
)

__all__ = [
    "MODES",
    "BaseLedger",
    "BudgetMode",
    "BudgetScope",
    "BudgetView",
    "Budgets",
    "Ledger",
    "LedgerEntry",
    "LedgerLike",
    "LedgerState",
    "Overshoot",
    "Reservation",
    "budgets_in_force",
    "current_budget",
    "nest",
    "pick_knob",
    "scope_budget",
    "settings_in_force",
]
