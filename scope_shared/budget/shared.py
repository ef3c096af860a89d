"""A ledger given as a PostgreSQL URL: wherever a `Ledger` is accepted, ``"postgresql://..."`` names
the shared budget ``default`` in that database (create it once with ``Ledger.connect(url,
budget=...)`` or ``scope budget create``). One connection per URL and process, reused by every call
that names it; for another budget name pass ``Ledger.connect(url, name)`` itself."""

from __future__ import annotations

import threading
from typing import Any

from scope_shared.budget.ledger import Ledger
from scope_shared.errors import InvalidKnobError
from scope_shared.postgres import is_postgres_url

_CONNECTED: dict[str, Ledger] = {}
_LOCK = threading.Lock()


def as_ledger(value: Any, what: str = "ledger") -> Ledger | None:
    """``None``, a `Ledger`, or a PostgreSQL URL (-> its shared ``default`` budget)."""
    if value is None or isinstance(value, Ledger):
        return value
    if is_postgres_url(value):
        with _LOCK:
            ledger = _CONNECTED.get(value)
            if ledger is None:
                ledger = _CONNECTED[value] = Ledger.connect(value)
            return ledger
    raise InvalidKnobError(
        f"{what} must be a scope_shared.Ledger or a postgresql:// URL, got {type(value).__name__}"
    )


def close_connected() -> None:
    """Close every ledger `as_ledger` connected (its open holds then lapse after their lease)."""
    with _LOCK:
        for ledger in _CONNECTED.values():
            ledger.close()  # type: ignore[attr-defined]
        _CONNECTED.clear()
