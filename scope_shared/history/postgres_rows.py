"""Rows of the shared PostgreSQL history <-> the values `History` takes and holds.

`PostgresHistory` keeps the state (what this replica has read, the locks, the follower); this
module only converts: the history's settings row (created on first use), question and outcome rows
read back into `History.add_questions` / `History.add_outcome_arrays` arguments, and the new local
rows written out with ``COPY``. Vectors travel as little-endian float32 bytes, scaled to unit length
the way `History` scales them, so every replica indexes bit-identical vectors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from scope_shared.errors import SharedStoreError
from scope_shared.history import postgres_sql as sql
from scope_shared.postgres import describe

if TYPE_CHECKING:
    from scope_shared.history.history import History

_SETTINGS = "SELECT dim, embedder, index_spec FROM scope_histories WHERE name = %s"


def open_settings(conn: Any, name: str, url: str, dim: int | None, embedder: str | None, index: Any) -> dict[str, Any]:
    """The history's dim, embedder and index settings; creates the history when ``dim`` is given
    and it does not exist. Given settings must match the stored ones."""
    row = conn.execute(_SETTINGS, (name,)).fetchone()
    if row is None:
        if dim is None:
            raise SharedStoreError(
                f"no history named {name!r} at {describe(url)}: pass dim= (and embedder_name=) "
                "to create it, or import a directory (scope history import)"
            )
        spec = dict(index) if isinstance(index, Mapping) else index
        conn.execute(
            "INSERT INTO scope_histories (name, dim, embedder, index_spec) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING",
            (name, int(dim), embedder, json.dumps(spec)),
        )
        row = conn.execute(_SETTINGS, (name,)).fetchone()
    for what, given, stored in (("dim", dim, row[0]), ("embedder", embedder, row[1])):
        if given is not None and given != stored:
            raise SharedStoreError(f"history {name!r} at {describe(url)} has {what} {stored!r}, not {given!r}")
    return {"dim": row[0], "embedder": row[1], "index": row[2]}


def question_arrays(qrows: Sequence[Any], dim: int) -> tuple[list[str], np.ndarray, list[str | None]]:
    """Question rows ``(text, benchmark, vector bytes)`` as `History.add_questions` arguments."""
    embs = np.frombuffer(b"".join(bytes(r[2]) for r in qrows), dtype="<f4").reshape(len(qrows), dim)
    return [r[0] for r in qrows], embs, [r[1] for r in qrows]


def outcome_arrays(orows: Sequence[Any]) -> dict[str, Any]:
    """Outcome rows ``(qid, model, correct, output, input, latency, source)`` as keyword arguments
    of `History.add_outcome_arrays` (names in first-seen order, NULL as NaN)."""
    col = list(zip(*orows, strict=True))
    models, sources = list(dict.fromkeys(col[1])), list(dict.fromkeys(col[6]))
    m_code, s_code = {m: i for i, m in enumerate(models)}, {s: i for i, s in enumerate(sources)}

    def num(i: int) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in col[i]], dtype=np.float64)

    return {
        "question_ids": np.array(col[0], np.int64), "model": models, "correct": num(2), "output_tokens": num(3),
        "input_tokens": num(4), "latency_s": num(5), "source": sources,
        "model_codes": np.array([m_code[m] for m in col[1]], np.int64),
        "source_codes": np.array([s_code[s] for s in col[6]], np.int64),
    }


def copy_questions(conn: Any, name: str, history: History, n_q: int, texts: Sequence[str], embeddings: Any) -> None:
    """Write the questions ``history`` added after the first ``n_q`` (their vectors from the
    ``embeddings`` of the ``texts`` the write was given)."""
    first: dict[str, int] = {}
    for i, t in enumerate(texts):
        first.setdefault(t.strip(), i)
    vecs = np.asarray(embeddings, dtype="<f4")
    with conn.cursor().copy(sql.COPY_QUESTIONS) as copy:
        for qid in range(n_q, len(history)):
            text = history.text(qid)
            copy.write_row((name, qid, text, history.benchmark(qid), vecs[first[text]].tobytes()))


def copy_outcomes(conn: Any, name: str, history: History, n_o: int) -> None:
    """Write the outcomes ``history`` recorded after the first ``n_o``."""
    with conn.cursor().copy(sql.COPY_OUTCOMES) as copy:
        for seq, row in enumerate(history.outcome_log.rows(n_o), start=n_o):
            copy.write_row((name, seq, row["q"], row["model"], row["correct"], row.get("output_tokens"),
                            row.get("input_tokens"), row.get("latency_s"), row["source"]))


def unit_rows(embeddings: Any, dim: int) -> Any:
    """Rows scaled to unit length as `History.add_questions` scales them, so the writer and every
    replica (which re-scale what the database holds) index bit-identical vectors. Input that
    `History` would reject is passed through for it to reject."""
    try:
        e = np.asarray(embeddings, dtype=np.float32)
    except (TypeError, ValueError):
        return embeddings
    if e.ndim != 2 or e.shape[1] != dim or not np.all(np.isfinite(e)):
        return embeddings
    return (e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)).astype("<f4")
