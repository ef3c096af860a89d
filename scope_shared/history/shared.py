"""A history given as a PostgreSQL URL, or as a place: a directory or a URL (what the CLI takes).

Wherever a `History` is accepted (``Router(cards, history)``, the integrations), a
``"postgresql://..."`` URL stands for the shared history ``default`` in that database, mirrored
in this process and followed (`History.connect`); one mirror per URL and process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from scope_shared.errors import InvalidComponentError
from scope_shared.history.history import History
from scope_shared.postgres import is_postgres_url

_CONNECTED: dict[str, History] = {}
_LOCK = threading.Lock()


def as_history(value: Any) -> History:
    """A `History`, or a PostgreSQL URL (-> its shared ``default`` history, connected once)."""
    if isinstance(value, History):
        return value
    if is_postgres_url(value):
        with _LOCK:
            history = _CONNECTED.get(value)
            if history is None:
                history = _CONNECTED[value] = History.connect(value)
            return history
    raise InvalidComponentError(f"history must be a scope_shared.History or a postgresql:// URL, got {type(value).__name__}")


def close_connected() -> None:
    """Close every history `as_history` connected (stop following; for shutdown and tests)."""
    with _LOCK:
        for history in _CONNECTED.values():
            history.close()  # type: ignore[attr-defined]
        _CONNECTED.clear()


def open_history(location: str | Path, name: str = "default", **settings: Any) -> History:
    """A history directory (`History.load`) or a shared one (a PostgreSQL URL, `History.connect`)."""
    if is_postgres_url(location):
        return History.connect(str(location), name, **settings)
    return History.load(location)  # settings are for shared histories only
