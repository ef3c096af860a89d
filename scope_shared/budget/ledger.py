"""A budget that a whole chain or agent run spends from.

Every routed call first *reserves* its expected cost (so concurrent calls cannot all spend the same
dollars), then *settles* with the real cost read from the response's token usage. Thread-safe, and
safe to share between asyncio tasks (its critical sections never await).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from scope_shared.errors import BudgetExceeded, InvalidKnobError

OnExhausted = Literal["cheapest", "raise"]


@dataclass(frozen=True)
class LedgerEntry:
    """One settled call: what it really cost and what it was."""

    cost: float
    model: str | None = None
    input_tokens: float | None = None
    output_tokens: float | None = None
    expected_cost: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


class Reservation:
    """Money held for one call in flight; settle it with the real cost, or cancel it."""

    def __init__(self, ledger: "Ledger", amount: float) -> None:
        self.ledger = ledger
        self.amount = amount
        self.open = True

    def settle(self, cost: float, **entry: Any) -> LedgerEntry:
        """Release the hold and charge the real cost (which may differ from the hold)."""
        return self.ledger._settle(self, cost, entry)

    def cancel(self) -> None:
        """Release the hold without charging (the call did not happen)."""
        self.ledger._release(self)


class Ledger:
    """A USD budget (``None`` = unlimited, only accounting) with reservations and an entry log."""

    def __init__(
        self, budget: float | None = None, name: str | None = None, on_exhausted: OnExhausted = "cheapest"
    ) -> None:
        if budget is not None:
            try:
                budget = self._check_cost(budget)
            except InvalidKnobError:
                raise InvalidKnobError(f"budget must be a finite number >= 0, got {budget!r}") from None
        if on_exhausted not in ("cheapest", "raise"):
            raise InvalidKnobError(f"on_exhausted must be 'cheapest' or 'raise', got {on_exhausted!r}")
        self.budget = budget
        self.name = name
        self.on_exhausted: OnExhausted = on_exhausted
        self._spent = 0.0
        self._reserved = 0.0
        self._open_holds = 0  # when none is open, _reserved is exactly 0 (no float residue)
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, url: str, name: str = "default", **settings: Any) -> "Ledger":
        """A budget shared by every process that connects to it, kept in PostgreSQL.

        ``Ledger.connect("postgresql://user@host/db", "team-a", budget=50.0, period="daily")``;
        see `scope_shared.budget.postgres_ledger.PostgresLedger` for the settings (``budget``,
        ``on_exhausted``, ``period``, ``lease_s``, ``reconfigure``, ``timeouts``).
        """
        from scope_shared.budget.postgres_ledger import PostgresLedger

        return PostgresLedger(url, name, **settings)

    def __repr__(self) -> str:
        return f"Ledger(budget={self.budget}, spent={self.spent:.6f}, name={self.name!r})"

    @property
    def spent(self) -> float:
        with self._lock:
            return self._spent

    @property
    def reserved(self) -> float:
        with self._lock:
            return self._reserved

    @property
    def remaining(self) -> float:
        """Budget minus spent minus held for calls in flight (``inf`` when unlimited)."""
        with self._lock:
            return self._remaining_locked()

    def _remaining_locked(self) -> float:
        if self.budget is None:
            return math.inf
        return self.budget - self._spent - self._reserved

    @property
    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self._entries)

    def charge(self, cost: float, **entry: Any) -> LedgerEntry:
        """Record a call's real cost directly (no reservation)."""
        cost = self._check_cost(cost)
        with self._lock:
            e = LedgerEntry(cost=cost, **entry)
            self._spent += cost
            self._entries.append(e)
            return e

    def reserve(self, amount: float, force: bool = False) -> Reservation:
        """Hold ``amount`` for a call; raise `BudgetExceeded` if it does not fit (unless ``force``)."""
        amount = self._check_cost(amount)
        with self._lock:
            if not force and amount > self._remaining_locked() + 1e-15:
                raise BudgetExceeded(
                    f"budget{'' if self.name is None else ' ' + repr(self.name)} cannot hold ${amount:.6f}: "
                    f"${self._remaining_locked():.6f} left of ${self.budget:.6f}"
                )
            self._reserved += amount
            self._open_holds += 1
            return Reservation(self, amount)

    def _settle(self, r: Reservation, cost: float, entry: dict[str, Any]) -> LedgerEntry:
        cost = self._check_cost(cost)
        with self._lock:
            if not r.open:
                raise BudgetExceeded("this reservation was already settled or cancelled")
            r.open = False
            self._drop_hold(r.amount)
            e = LedgerEntry(cost=cost, expected_cost=entry.pop("expected_cost", r.amount), **entry)
            self._spent += cost
            self._entries.append(e)
            return e

    def _release(self, r: Reservation) -> None:
        with self._lock:
            if r.open:
                r.open = False
                self._drop_hold(r.amount)

    def _drop_hold(self, amount: float) -> None:
        """Release a hold (lock held). Adding and subtracting many floats leaves residue like
        -1e-16; with no hold open the true value is 0, so it is reset."""
        self._open_holds -= 1
        self._reserved = 0.0 if self._open_holds == 0 else max(self._reserved - amount, 0.0)

    @staticmethod
    def _check_cost(cost: float) -> float:
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0:
            raise InvalidKnobError(f"a cost must be a finite number >= 0, got {cost!r}")
        return float(cost)

    def summary(self) -> dict[str, Any]:
        """Spend per model and in total (JSON-friendly)."""
        with self._lock:
            per_model: dict[str, dict[str, float]] = {}
            for e in self._entries:
                s = per_model.setdefault(e.model or "?", {"calls": 0, "cost": 0.0})
                s["calls"] += 1
                s["cost"] += e.cost
            return {
                "budget": self.budget,
                "spent": self._spent,
                "reserved": self._reserved,
                "remaining": self._remaining_locked(),
                "calls": len(self._entries),
                "per_model": per_model,
            }
