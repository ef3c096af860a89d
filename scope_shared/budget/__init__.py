"""Budgets: the ledger a chain or agent run spends from, and ``scope_budget`` blocks that put one in force."""

from scope_shared.budget.ledger import Ledger, LedgerEntry, OnExhausted, Reservation
from scope_shared.budget.scopes import BudgetScope, current_budget, pick_knob, scope_budget, settings_in_force

__all__ = [
    "BudgetScope",
    "Ledger",
    "LedgerEntry",
    "OnExhausted",
    "Reservation",
    "current_budget",
    "pick_knob",
    "scope_budget",
    "settings_in_force",
]
