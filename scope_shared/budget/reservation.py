"""`Reservation`: money held for one call in flight, across every ledger that call spends from."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from scope_shared.budget.records import LedgerEntry
from scope_shared.errors import ReservationError

if TYPE_CHECKING:
    from scope_shared.budget.base import BaseLedger


class Reservation:
    """Money held for one call in flight, in one or more ledgers; settle it with the real cost, or cancel.

    Total by construction: the arguments of `settle` are validated before anything changes (a bad
    cost or field raises `InvalidUsageError` and the hold stays open, to be settled right or
    cancelled); the first `settle` or `cancel` closes every ledger's hold exactly once, even when
    threads race; a second `settle` raises `ReservationError`, a second `cancel` does nothing; a
    reservation dropped without either is cancelled when it is garbage-collected.
    """

    def __init__(self, holds: Sequence[tuple[BaseLedger, Hashable]], amount: float) -> None:
        self.amount = amount
        self._holds = list(holds)
        self._lock = threading.Lock()
        self._closed = [False]  # shared with the finalizer, which must not hold self
        self._finalizer = weakref.finalize(self, _release, self._holds, self._closed, self._lock)

    @property
    def open(self) -> bool:
        return not self._closed[0]

    @property
    def ledger(self) -> BaseLedger | None:
        """The innermost ledger holding the money."""
        return self._holds[0][0] if self._holds else None

    def _close(self) -> bool:
        with self._lock:
            if self._closed[0]:
                return False
            self._closed[0] = True
        self._finalizer.detach()
        return True

    def settle(self, cost: float, **entry: Any) -> LedgerEntry:
        """Release the hold and charge the real cost (which may differ from the hold)."""
        e = LedgerEntry.build(cost, {"expected_cost": self.amount, **entry})
        if not self._close():
            raise ReservationError("this reservation was already settled or cancelled")
        _each(self._holds, lambda level, key: level._close_hold(key, e))
        return e

    def cancel(self) -> None:
        """Release the hold without charging (the call did not happen). Idempotent."""
        if self._close():
            _each(self._holds, lambda level, key: level._close_hold(key, None))


def _each(holds: Sequence[tuple[BaseLedger, Hashable]], close: Any) -> None:
    """Close every level's hold; a level that fails does not stop the others (first error re-raised)."""
    first: BaseException | None = None
    for level, key in holds:
        try:
            close(level, key)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the other levels
            first = first or exc
    if first is not None:
        raise first


def _release(holds: Sequence[tuple[BaseLedger, Hashable]], closed: list[bool], lock: threading.Lock) -> None:
    with lock:
        if closed[0]:
            return
        closed[0] = True
    _each(holds, lambda level, key: level._close_hold(key, None))
