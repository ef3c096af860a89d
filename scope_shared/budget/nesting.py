"""Nested budgets: the ledgers one call is charged to (a chain's budget inside a team's).

A call is charged to its own ledger and every ledger enclosing it: each ledger's ``parent`` chain,
the ledgers of enclosing ``scope_budget`` blocks, and (in LangChain) the budgets a run's config
nests (`langchain_scope.with_budget`). `Budgets` gathers them, innermost first and each once, and
offers the same reading and spending interface as one ledger, so the router and a routed call
need not know how many levels there are.
"""

from __future__ import annotations

from typing import Any, Union

from scope_shared.budget.base import BaseLedger, LedgerEntry, Reservation
from scope_shared.budget.levels import Levels
from scope_shared.budget.shared import connected_ledger
from scope_shared.errors import InvalidBudgetError
from scope_shared.postgres import is_postgres_url

class Budgets:
    """The budgets one call spends from, innermost first (each ledger with its parents, each once)."""

    def __init__(self, *ledgers: LedgerLike | None) -> None:
        flat: list[BaseLedger] = []
        for item in ledgers:
            if item is None:
                continue
            if isinstance(item, Budgets):
                flat.extend(item.levels)
            elif isinstance(item, BaseLedger):
                flat.extend(item.lineage())
            else:
                raise InvalidBudgetError(f"a budget must be a scope_shared.Ledger, got {type(item).__name__}")
        self.levels = Levels(flat)

    @classmethod
    def of(cls, *ledgers: LedgerLike | None) -> "Budgets | None":
        """The budgets of ``ledgers`` (innermost first), or None when there are none."""
        budgets = cls(*ledgers)
        return budgets if len(budgets.levels) else None

    @property
    def innermost(self) -> BaseLedger:
        return self.levels.ledgers[0]

    @property
    def ledgers(self) -> tuple[BaseLedger, ...]:
        return self.levels.ledgers

    @property
    def name(self) -> str | None:
        """The innermost budget's name (what a call's record shows)."""
        return self.innermost.name

    @property
    def spent(self) -> float:
        """What the innermost budget has spent."""
        return self.innermost.spent

    @property
    def remaining(self) -> float:
        """The least left in any of the budgets (``inf`` when all are unlimited)."""
        return min(lv.remaining for lv in self.levels)

    @property
    def capped(self) -> bool:
        """True when one of the budgets has a limit."""
        return any(lv.budget is not None for lv in self.levels)

    @property
    def room(self) -> float:
        return self.levels.room

    @property
    def hold_factor(self) -> float:
        return self.levels.hold_factor

    def reserve(self, amount: float, force: bool = False) -> Reservation:
        return self.levels.reserve(amount, force)

    def charge(self, cost: float, **entry: Any) -> LedgerEntry:
        return self.levels.charge(cost, entry)

    def check_fits(self, cost: float, model: str) -> None:
        self.levels.check_fits(cost, model)

    def enforce(self, reason: str, needed: float) -> None:
        self.levels.enforce(reason, needed)

    def __contains__(self, ledger: object) -> bool:
        return any(lv is ledger for lv in self.levels)

    def __repr__(self) -> str:
        return "Budgets(" + " < ".join(repr(lv.name or "?") for lv in self.levels) + ")"


#: what a call, a component or a block may be given as its budget: one ledger, or nested budgets
LedgerLike = Union[BaseLedger, Budgets]


def nest(inner: LedgerLike | None, outer: LedgerLike | None) -> Budgets | None:
    """``inner`` inside ``outer``: a call charged to the result is charged to both."""
    return Budgets.of(inner, outer)


def check_ledger(value: Any, what: str = "ledger") -> LedgerLike | None:
    """``value`` if it is a ledger (or nested budgets) or None, the shared budget a ``postgresql://``
    URL names (`scope_shared.budget.shared`), else `InvalidBudgetError`."""
    if is_postgres_url(value):
        return connected_ledger(value)
    if value is not None and not isinstance(value, (BaseLedger, Budgets)):
        raise InvalidBudgetError(f"{what} must be a scope_shared.Ledger or a postgresql:// URL, got {type(value).__name__}")
    return value
