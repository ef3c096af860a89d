"""The ledger interface: what every budget store provides (in memory, `Ledger`; PostgreSQL, later).

A *ledger* is one USD budget that many calls spend from. A call first *reserves* (holds) what it
may cost, so concurrent calls cannot all spend the same dollars, then *settles* with what it really
cost, or *cancels* the hold. Ledgers nest: a ledger's ``parent`` (a team's budget above a chain's)
is charged for everything charged to it, and so on up.

An implementation subclasses `BaseLedger` and provides five primitives, each atomic on its own
store (a lock; in SQL one statement or transaction):

- ``_open_hold(amount, force)``: hold ``amount`` if it fits what is left (or ``force``); return a key.
  SQL: ``UPDATE ... SET reserved = reserved + :a WHERE budget IS NULL OR budget - spent - reserved >= :a``
  plus an insert into a holds table.
- ``_close_hold(key, entry)``: exactly once per key, drop the hold and, with an ``entry``, record it
  (``spent += entry.cost``, the overshoot statistics against the amount held); False if the key was
  already closed. SQL: ``DELETE FROM holds WHERE id = :key RETURNING amount``, then the updates.
- ``_record(entry)``: charge without a hold.
- ``_state()``: a consistent `LedgerState` snapshot.  ``entries``: the settled entries, oldest first.

Everything else (nesting, modes, the hold factor, summaries, the reservation handle that makes
settling total) is written once here, on top of those primitives.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from scope_shared.budget.records import (
    EPS,
    MAX_USD,
    MODES,
    BudgetMode,
    LedgerEntry,
    LedgerState,
    Overshoot,
    check_amount,
    normalize_mode,
    overshoot_after,
)
from scope_shared.budget.reservation import Reservation
from scope_shared.errors import BudgetExceeded, InvalidBudgetError, InvalidUsageError
from scope_shared.live import LiveObject

if TYPE_CHECKING:
    from scope_shared.budget.levels import Levels

__all__ = [
    "EPS",
    "MAX_USD",
    "MODES",
    "BaseLedger",
    "BudgetMode",
    "BudgetView",
    "LedgerEntry",
    "LedgerState",
    "Overshoot",
    "Reservation",
    "check_amount",
    "normalize_mode",
    "overshoot_after",
]


class BudgetView(Protocol):
    """What the router reads of a budget (a `BaseLedger`, or the nested `Budgets` of one call)."""

    @property
    def room(self) -> float: ...

    def check_fits(self, cost: float, model: str) -> None: ...

    def enforce(self, reason: str, needed: float) -> None: ...


class BaseLedger(LiveObject, ABC):
    """One budget. Subclasses provide the storage primitives (see the module docstring).

    Args:
        budget: USD (``None``: unlimited, accounting only).
        name: shown in decisions, errors and summaries.
        mode: what happens when the budget cannot pay for a call: ``"raise"`` (default: stop the
            run with `BudgetExceeded` before the call), ``"end"`` (stop, but integrations end an
            agent run gracefully with a final message, like LangChain's
            ``ModelCallLimitMiddleware(exit_behavior="end")``), or ``"soft"`` (keep going on the
            cheapest candidate and record the overshoot).
        parent: an enclosing budget charged for everything charged here.
        max_hold_factor: holds grow by the largest cost/hold ratio this ledger has seen, up to
            this factor, so a provider that bills more than estimated soon stops overdrawing
            (1.0: never grow).

    A ledger is live shared state (`scope_shared.live`): ``copy.deepcopy`` returns the same ledger,
    ``pickle`` raises, saying what to do instead.
    """

    pickle_advice: ClassVar[str] = (
        "a copy in another process would be a second, independent budget. Give each process its own "
        "Ledger, or share one budget through a shared ledger store; copy.deepcopy returns this same ledger"
    )

    def __init__(
        self,
        budget: float | None = None,
        name: str | None = None,
        mode: BudgetMode | str = "raise",
        *,
        parent: "BaseLedger | None" = None,
        max_hold_factor: float = 4.0,
    ) -> None:
        if budget is not None:
            try:
                budget = check_amount(budget, "budget")
            except InvalidUsageError as exc:
                raise InvalidBudgetError(str(exc)) from None
        if parent is not None and not isinstance(parent, BaseLedger):
            raise InvalidBudgetError(f"parent must be a ledger, got {type(parent).__name__}")
        if isinstance(max_hold_factor, bool) or not isinstance(max_hold_factor, (int, float)) or not (
            1.0 <= max_hold_factor <= 100.0
        ):
            raise InvalidBudgetError(f"max_hold_factor must be a number in [1, 100], got {max_hold_factor!r}")
        if name is not None and not isinstance(name, str):
            raise InvalidBudgetError(f"name must be a string, got {name!r}")
        self.budget: float | None = budget
        self.name = name
        self.mode: BudgetMode = normalize_mode(mode)
        self.parent = parent
        self.max_hold_factor = float(max_hold_factor)
        self._setup_store()

    def _setup_store(self) -> None:
        """Set up this ledger's storage (called at the end of ``__init__``)."""

    # ------------------------------------------------------------ primitives (per store, atomic)
    @abstractmethod
    def _open_hold(self, amount: float, force: bool) -> Hashable:
        """Hold ``amount`` if it fits what is left (always when ``force`` or unlimited); return a
        key. Raise ``self.short_of(amount, left)`` when it does not fit."""

    @abstractmethod
    def _close_hold(self, key: Hashable, entry: LedgerEntry | None) -> bool:
        """Exactly once per key: drop the hold; with ``entry``, record it against the amount held.
        Return False (and change nothing) if the key is already closed."""

    @abstractmethod
    def _record(self, entry: LedgerEntry) -> None:
        """Record a charge made without a hold."""

    @abstractmethod
    def _state(self) -> LedgerState:
        """A consistent snapshot of the totals."""

    @property
    @abstractmethod
    def entries(self) -> list[LedgerEntry]:
        """Every settled or charged entry, oldest first."""

    # ------------------------------------------------------------ one level
    @property
    def capping(self) -> bool:
        """True when this budget stops calls it cannot pay for (mode raise or end, and a budget)."""
        return self.budget is not None and self.mode != "soft"

    @property
    def spent(self) -> float:
        return self._state().spent

    @property
    def reserved(self) -> float:
        return self._state().reserved

    @property
    def calls(self) -> int:
        return self._state().calls

    @property
    def remaining(self) -> float:
        """This budget minus spent minus held (``inf`` when unlimited; negative once overdrawn)."""
        if self.budget is None:
            return math.inf
        s = self._state()
        return self.budget - s.spent - s.reserved

    @property
    def overshoot(self) -> Overshoot:
        s = self._state()
        overdraw = 0.0 if self.budget is None else max(0.0, s.spent - self.budget)
        return Overshoot(s.overshoot_calls, s.overshoot_excess, s.max_ratio, overdraw)

    @property
    def hold_factor(self) -> float:
        """What a call's expected cost is multiplied by to make its hold (see ``max_hold_factor``)."""
        return min(self.max_hold_factor, max(1.0, self._state().max_ratio))

    def short_of(self, amount: float, left: float) -> BudgetExceeded:
        """The error for a hold of ``amount`` that does not fit (``left`` USD are)."""
        return BudgetExceeded(
            f"budget{'' if self.name is None else ' ' + repr(self.name)} cannot hold ${amount:.6f}: "
            f"${max(left, 0.0):.6f} left of ${self.budget or 0.0:.6f}",
            ledger=self.name,
            mode="end" if self.mode == "end" else "raise",
            needed=amount,
            left=left,
        )

    def lineage(self) -> tuple["BaseLedger", ...]:
        """This ledger, then its parent, grandparent, ..."""
        out: list[BaseLedger] = []
        node: BaseLedger | None = self
        while node is not None:
            if any(n is node for n in out):
                raise InvalidBudgetError(f"ledger {self.name!r}: its parents form a cycle")
            out.append(node)
            node = node.parent
        return tuple(out)

    def child(self, budget: float | None = None, name: str | None = None, mode: BudgetMode | str = "raise") -> "BaseLedger":
        """A nested budget inside this one (same implementation; override for other stores)."""
        return type(self)(budget, name, mode, parent=self, max_hold_factor=self.max_hold_factor)

    # ------------------------------------------------------------ across the lineage (this + parents)
    def _levels(self) -> "Levels":
        from scope_shared.budget.levels import Levels

        return Levels(self.lineage())

    @property
    def room(self) -> float:
        """The largest *expected* cost a new call can be admitted with, here and in every parent."""
        return self._levels().room

    def reserve(self, amount: float, force: bool = False) -> "Reservation":
        """Hold ``amount`` here and in every parent; `BudgetExceeded` if one cannot (``force``
        overrides soft budgets only: a capping budget is never overdrawn by a hold)."""
        return self._levels().reserve(amount, force)

    def charge(self, cost: float, **entry: Any) -> LedgerEntry:
        """Record a real cost here and in every parent, without a hold (never refused)."""
        return self._levels().charge(cost, entry)

    def check_fits(self, cost: float, model: str) -> None:
        """Raise `BudgetExceeded` if a capping budget here or above cannot hold ``cost``."""
        self._levels().check_fits(cost, model)

    def enforce(self, reason: str, needed: float) -> None:
        """Raise `BudgetExceeded(reason)` if any budget here or above is capping."""
        self._levels().enforce(reason, needed)

    # ------------------------------------------------------------ reports
    def per_model(self) -> dict[str, dict[str, float]]:
        """Calls and USD per model (``"?"`` for entries without one)."""
        out: dict[str, dict[str, float]] = {}
        for e in self.entries:
            s = out.setdefault(e.model or "?", {"calls": 0, "cost": 0.0})
            s["calls"] += 1
            s["cost"] += e.cost
        return out

    def summary(self) -> dict[str, Any]:
        """Budget, spend, holds, spend per model and the overshoot record (JSON-friendly)."""
        s = self._state()
        o = self.overshoot
        return {
            "name": self.name,
            "budget": self.budget,
            "mode": self.mode,
            "spent": s.spent,
            "reserved": s.reserved,
            "remaining": None if self.budget is None else self.budget - s.spent - s.reserved,
            "calls": s.calls,
            "per_model": self.per_model(),
            "overshoot": {"calls": o.calls, "excess": o.excess, "max_ratio": o.max_ratio, "overdraw": o.overdraw},
            "parent": None if self.parent is None else self.parent.name,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(budget={self.budget}, spent={self.spent:.6f}, name={self.name!r}, "
            f"mode={self.mode!r})"
        )
