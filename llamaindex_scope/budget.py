"""Budget per pipeline for LlamaIndex: ``with scope_budget(ledger=..., min_accuracy=0.8): ...``.

LlamaIndex has no per-run config object, so the knob and ledger for a block of code are put in
force with a context manager. The implementation is the core's (`scope_shared.budget.scopes`),
shared with any integration that wants it; this module only re-exports it where LlamaIndex users
look for it.
"""

from scope_shared.budget.ledger import Ledger
from scope_shared.budget.scopes import BudgetScope, current_budget, scope_budget, settings_in_force

__all__ = ["BudgetScope", "Ledger", "current_budget", "scope_budget", "settings_in_force"]
