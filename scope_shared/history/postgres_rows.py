"""Rows of the shared PostgreSQL history <-> the values `History` takes and holds.

`PostgresHistory` keeps the state (what this replica has read, the locks, the follower); this
module only converts: the history's settings row (created on first use), question and outcome rows
read back into `History.add_questions` / `History.add_outcome_arrays` arguments, and the new local
rows written out with ``COPY``. Vectors travel as little-endian float32 bytes, scaled to unit length
the way `History` scales them, so every replica indexes bit-identical vectors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.errors import ScopeError, SharedStoreError
from scope_shared.query import check_text
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


PLACEHOLDER = "[unreadable row: question {qid} of shared history {name!r}]"


def _bad_text(value: Any, what: str) -> str | None:
    try:
        check_text(value, what)
    except ScopeError as exc:
        return str(exc)
    return None


def question_arrays(
    qrows: Sequence[Any], dim: int, start: int, stop: int, name: str, known: Callable[[str], bool],
) -> tuple[list[str], np.ndarray, list[str | None], dict[int, str]]:
    """Question rows ``(qid, text, benchmark, vector bytes)`` for ids ``start .. stop - 1`` as
    `History.add_questions` arguments, each row checked as another client may have written it.

    A row that is missing, or that no `History` would hold (a blank or unencodable text, a text
    already there, an embedding of another size or with NaN), becomes a placeholder (a text naming
    the row, a zero vector that is near no query), so question ids stay the database's; the
    placeholders' ids and reasons are returned."""
    by_qid = {r[0]: r for r in qrows if isinstance(r[0], int) and start <= r[0] < stop}
    texts: list[str] = []
    embs = np.zeros((stop - start, dim), dtype="<f4")
    benches: list[str | None] = []
    bad: dict[int, str] = {}
    seen: set[str] = set()
    for i, qid in enumerate(range(start, stop)):
        row = by_qid.get(qid)
        why = "the row is missing" if row is None else _bad_text(row[1], "question text")
        if why is None:
            key = row[1].strip()
            if key in seen or known(key):
                why = "its text is already in the history"
        vec = None
        if why is None:
            raw = bytes(row[3]) if isinstance(row[3], (bytes, bytearray, memoryview)) else b""
            if len(raw) != 4 * dim:
                why = f"embedding of {len(raw)} bytes, expected {dim} float32 values"
            else:
                vec = np.frombuffer(raw, dtype="<f4")
                if not np.all(np.isfinite(vec)):
                    why = "embedding holds NaN or infinite values"
        if why is not None:
            bad[qid] = why
            texts.append(PLACEHOLDER.format(qid=qid, name=name))
            benches.append(None)
            continue
        seen.add(row[1].strip())
        texts.append(row[1])
        embs[i] = vec
        bench = row[2]
        benches.append(bench if bench is None or _bad_text(bench, "benchmark") is None else None)
    return texts, embs, benches, bad


def _bad_outcome(row: Sequence[Any], n_questions: int, placeholders: set[int]) -> str | None:
    """Why an outcome row ``(seq, qid, model, correct, output, input, latency, source)`` cannot be
    applied (None when it can): the same rules as `Outcome`, plus a question that exists here."""
    _, qid, model, correct = row[0], row[1], row[2], row[3]
    if isinstance(qid, bool) or not isinstance(qid, int) or not 0 <= qid < n_questions:
        return f"question id {qid!r} is not in the history"
    if qid in placeholders:
        return f"question {qid} is an unreadable row"
    for what, value in (("model", model), ("source", row[7])):
        if not isinstance(value, str) or value != value.strip() or _bad_text(value, what) is not None:
            return f"{what} {str(value)[:40]!r} is not a clean, non-empty name"
    if isinstance(correct, bool) or not isinstance(correct, (int, float)) or not 0 <= correct <= 1:
        return f"correct={correct!r} is not in [0, 1]"
    for what, value in zip(("output_tokens", "input_tokens", "latency_s"), row[4:7], strict=True):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            return f"{what}={value!r} is not a finite number >= 0"
    return None


def outcome_arrays(
    orows: Sequence[Any], start: int, stop: int, n_questions: int, placeholders: set[int],
) -> tuple[dict[str, Any] | None, dict[int, str]]:
    """Outcome rows ``(seq, qid, model, correct, output, input, latency, source)`` for sequence
    numbers ``start .. stop - 1`` as keyword arguments of `History.add_outcome_arrays` (names in
    first-seen order, NULL as NaN), leaving out rows that are missing or that no `History` would
    hold; returns them with the left-out sequence numbers and why."""
    bad: dict[int, str] = {}
    good = []
    by_seq = {r[0]: r for r in orows if isinstance(r[0], int) and start <= r[0] < stop}
    for seq in range(start, stop):
        row = by_seq.get(seq)
        why = "the row is missing" if row is None else _bad_outcome(row, n_questions, placeholders)
        if why is None:
            good.append(row)
        else:
            bad[seq] = why
    if not good:
        return None, bad
    col = list(zip(*good, strict=True))
    models, sources = list(dict.fromkeys(col[2])), list(dict.fromkeys(col[7]))
    m_code, s_code = {m: i for i, m in enumerate(models)}, {s: i for i, s in enumerate(sources)}

    def num(i: int) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in col[i]], dtype=np.float64)

    return {
        "question_ids": np.array(col[1], np.int64), "model": models, "correct": num(3), "output_tokens": num(4),
        "input_tokens": num(5), "latency_s": num(6), "source": sources,
        "model_codes": np.array([m_code[m] for m in col[2]], np.int64),
        "source_codes": np.array([s_code[s] for s in col[7]], np.int64),
    }, bad


def card_objects(raw: Sequence[Any]) -> tuple[dict[str, ModelCard], list[str]]:
    """Card rows (jsonb) as `ModelCard` objects, leaving out (and naming) those that are not cards."""
    cards: dict[str, ModelCard] = {}
    bad: list[str] = []
    for (c,) in raw:
        try:
            if not isinstance(c, Mapping):
                raise TypeError(f"not an object: {type(c).__name__}")
            card = ModelCard.create(**{str(k): v for k, v in c.items()})
        except Exception as exc:  # noqa: BLE001 - pydantic, TypeError...: any card that is not one is left out
            bad.append(f"card {str(c)[:80]}: {type(exc).__name__}: {str(exc)[:160]}")
            continue
        cards[card.name] = card
    return cards, bad


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


def copy_outcomes(conn: Any, name: str, history: History, n_o: int, first_seq: int) -> None:
    """Write the outcomes ``history`` recorded after its first ``n_o``, numbered from ``first_seq``
    (the database's counter: rows this replica left out are counted there, not here)."""
    with conn.cursor().copy(sql.COPY_OUTCOMES) as copy:
        for seq, row in enumerate(history.outcome_log.rows(n_o), start=first_seq):
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
