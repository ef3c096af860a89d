"""A ledger given as a PostgreSQL URL: wherever a ledger is accepted, ``"postgresql://..."`` names
the shared budget ``default`` in that database (create it once with ``Ledger.connect(url,
budget=...)`` or ``scope budget create``). One connection per URL and process, reused by every call
that names it; for another budget name pass ``Ledger.connect(url, name)`` itself."""

from __future__ import annotations

import threading

from scope_shared.budget.base import BaseLedger
from scope_shared.budget.ledger import Ledger

_CONNECTED: dict[str, BaseLedger] = {}
_LOCK = threading.Lock()


def connected_ledger(url: str) -> BaseLedger:
    """The shared ``default`` budget at ``url``, connected once per process."""
    with _LOCK:
        ledger = _CONNECTED.get(url)
        if ledger is None:
            ledger = _CONNECTED[url] = Ledger.connect(url)
        return ledger


def close_connected() -> None:
    """Close every ledger `connected_ledger` opened (their open holds then lapse after their lease)."""
    with _LOCK:
        for ledger in _CONNECTED.values():
            ledger.close()  # type: ignore[attr-defined]
        _CONNECTED.clear()
