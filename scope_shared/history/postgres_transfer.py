"""Moving a history between the directory store and PostgreSQL (``scope history import|export``).

Both go through the public `History.load` / `History.save` and the shared history's ordinary
writes, so whatever the directory store checks on load, and whatever `History` validates on
write, holds here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scope_shared.history.history import History
from scope_shared.history.postgres_store import PostgresHistory


def import_directory(path: str | Path, url: str, name: str = "default", **settings: Any) -> PostgresHistory:
    """Copy a history directory (`History.save`) into the database, merging into ``name`` if it exists
    (questions by text; outcomes are added). Returns the shared history, connected.

    Cards, questions and outcomes are written in one transaction: all or nothing, so a failed
    import leaves the database as it was and can simply be run again; its error names the
    database's reason (a constraint, a limit), not only the connection."""
    local = History.load(path)
    shared = PostgresHistory(url, name, dim=local.dim, embedder_name=local.embedder_name,
                             index=local.index.config(), **settings)
    created = len(shared) == 0 and shared.n_records == 0 and not shared.cards
    try:
        shared.merge(local)
    except BaseException:
        if created:  # leave no empty history behind either (unless another writer used it meanwhile)
            try:
                shared._session.run("removing the empty history of a failed import", lambda c: c.execute(  # noqa: SLF001
                    "DELETE FROM scope_histories WHERE name = %s AND n_questions = 0 AND n_outcomes = 0 "
                    "AND cards_version = 0", (name,)))
            except Exception:  # noqa: BLE001 - the import's own error is the one to report
                pass
        shared.close()
        raise
    return shared


def export_directory(url: str, path: str | Path, name: str = "default", **settings: Any) -> History:
    """Write the shared history ``name`` to a history directory (readable by `History.load`)."""
    shared = PostgresHistory(url, name, follow=False, **settings)
    try:
        shared.save(path)
    finally:
        shared.close()
    return shared
