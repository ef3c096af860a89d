"""`Ledger`: the in-memory budget a chain or agent run spends from.

The interface (modes, nesting, holds, the overshoot record) is `scope_shared.budget.base`; this
module stores one ledger's totals in memory behind a lock. Thread-safe, and safe to share between
asyncio tasks (its critical sections never await).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Hashable
from dataclasses import replace
from typing import Any

from scope_shared.budget.base import (
    EPS,
    BaseLedger,
    LedgerEntry,
    LedgerState,
    Overshoot,
    Reservation,
    overshoot_after,
)

logger = logging.getLogger("scope_shared.budget")

__all__ = ["Ledger", "LedgerEntry", "Overshoot", "Reservation"]


class Ledger(BaseLedger):
    """A USD budget in memory (``None`` = unlimited, only accounting), with holds and an entry log.

    ``Ledger(0.50)`` is a cap: a call that does not fit what is left raises `BudgetExceeded`
    before it is made. See `BaseLedger` for ``mode``, ``parent`` and ``max_hold_factor``.
    """

    def _setup_store(self) -> None:
        self._lock = threading.Lock()
        self._totals = LedgerState()
        self._holds: dict[int, float] = {}
        self._keys = itertools.count()
        self._entries: list[LedgerEntry] = []
        self._warned = False

    @classmethod
    def connect(cls, url: str, name: str = "default", **settings: Any) -> BaseLedger:
        """A budget shared by every process that connects to it, kept in PostgreSQL.

        ``Ledger.connect("postgresql://user@host/db", "team-a", budget=50.0, period="daily")``;
        see `scope_shared.budget.postgres_ledger.PostgresLedger` for the settings (``budget``,
        ``mode``, ``period``, ``lease_s``, ``parent``, ``reconfigure``, ``timeouts``).
        """
        from scope_shared.budget.postgres_ledger import PostgresLedger

        return PostgresLedger(url, name, **settings)

    def _open_hold(self, amount: float, force: bool) -> Hashable:
        with self._lock:
            s = self._totals
            if not force and self.budget is not None:
                left = self.budget - s.spent - s.reserved
                if amount > left + EPS:
                    raise self.short_of(amount, left)
            key = next(self._keys)
            self._holds[key] = amount
            self._totals = replace(s, reserved=s.reserved + amount)
            return key

    def _close_hold(self, key: Hashable, entry: LedgerEntry | None) -> bool:
        with self._lock:
            held = self._holds.pop(key, None)  # type: ignore[call-overload]
            if held is None:
                return False
            s = self._totals
            # with no hold open the true total is 0: reset it (no float residue like -1e-16)
            s = replace(s, reserved=max(s.reserved - held, 0.0) if self._holds else 0.0)
            if entry is not None:
                s = overshoot_after(s, held, entry.cost)
                self._entries.append(entry)
            self._totals = s
        self._warn_if_overdrawn()
        return True

    def _record(self, entry: LedgerEntry) -> None:
        with self._lock:
            s = self._totals
            self._totals = replace(s, spent=s.spent + entry.cost, calls=s.calls + 1)
            self._entries.append(entry)
        self._warn_if_overdrawn()

    def _state(self) -> LedgerState:
        with self._lock:
            return self._totals

    @property
    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries)

    def _warn_if_overdrawn(self) -> None:
        """Say once, in the log, when a budget is first overdrawn (its overshoot record keeps the rest)."""
        o = self.overshoot
        if o.overdraw > EPS and not self._warned:
            self._warned = True
            logger.warning(
                "budget %s overdrawn by $%.6f (%s mode): %d call(s) cost more than they held, by $%.6f",
                repr(self.name) if self.name else "(unnamed)", o.overdraw, self.mode, o.calls, o.excess,
            )

