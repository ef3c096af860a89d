"""Moving a history between the directory store and PostgreSQL (``scope history import|export``).

Both go through the public `History.load` / `History.save` and the shared history's ordinary
writes, so whatever the directory store checks on load, and whatever `History` validates on
write, holds here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.history.history import History
from scope_shared.history.postgres_store import PostgresHistory


def import_directory(path: str | Path, url: str, name: str = "default", **settings: Any) -> PostgresHistory:
    """Copy a history directory (`History.save`) into the database, merging into ``name`` if it exists
    (questions by text; outcomes are added). Returns the shared history, connected.

    Cards, then questions, then all outcomes in one transaction: each step is idempotent but the
    last, which is all or nothing, so an import that failed can simply be run again."""
    local = History.load(path)
    shared = PostgresHistory(url, name, dim=local.dim, embedder_name=local.embedder_name,
                             index=local.index.config(), **settings)
    if local.cards:
        shared.cards.update(local.cards)
    texts = [local.text(i) for i in range(len(local))]
    ids = np.asarray(shared.add_questions(texts, local.embeddings, local.benchmarks), dtype=np.int64)
    lg = local.outcome_log
    if len(lg):
        shared.add_outcome_arrays(
            ids[lg.column("qid")], lg.model_names, lg.column("correct"), lg.column("output_tokens"),
            input_tokens=lg.column("input_tokens"), latency_s=lg.column("latency_s"), source=lg.source_names,
            model_codes=lg.column("model").astype(np.int64), source_codes=lg.column("source").astype(np.int64),
        )
    return shared


def export_directory(url: str, path: str | Path, name: str = "default", **settings: Any) -> History:
    """Write the shared history ``name`` to a history directory (readable by `History.load`)."""
    shared = PostgresHistory(url, name, follow=False, **settings)
    try:
        shared.save(path)
    finally:
        shared.close()
    return shared
