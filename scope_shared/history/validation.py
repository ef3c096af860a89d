"""Checks `History` runs on its arguments before it changes anything (each raises `ScopeError`).

Pure functions, so every entry point validates the same way and a bad call leaves the history as
it was: no model created in memory that is missing on disk, no question half-added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from scope_shared.cards import Outcome
from scope_shared.errors import HistoryDataError
from scope_shared.history.index_spec import MAX_DIM
from scope_shared.query import check_text


def check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, Integral) or not 1 <= int(dim) <= MAX_DIM:
        raise HistoryDataError(f"embedding dimension must be an integer between 1 and {MAX_DIM}, got {dim!r}")
    return int(dim)


def check_question_id(question_id: Any, n: int) -> int:
    """An existing question's id: an integer (not a bool, not 1.5) in ``[0, n)``."""
    if isinstance(question_id, (bool, np.bool_)) or not isinstance(question_id, Integral):
        raise HistoryDataError(f"question id must be an integer, got {question_id!r}")
    if not 0 <= int(question_id) < n:
        raise HistoryDataError(f"no question with id {question_id} (history has {n})")
    return int(question_id)


def check_ids(ids: Any, n: int) -> np.ndarray:
    """An array of existing question ids (int64)."""
    try:
        arr = np.asarray(ids)
    except (TypeError, ValueError) as exc:
        raise HistoryDataError(f"question ids must be integers: {exc}") from None
    if arr.size and (arr.dtype.kind not in "iu"):
        raise HistoryDataError(f"question ids must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise HistoryDataError(f"question ids out of range (history has {n})")
    return arr


def numbers(values: Any, what: str, kinds: str = "iuf") -> np.ndarray:
    """A flat float64 array from numbers of the given dtype kinds (strings, objects refused)."""
    try:
        arr = np.asarray(values)
        if arr.size and arr.dtype.kind not in kinds:
            raise TypeError(f"dtype {arr.dtype}")
        return arr.astype(np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise HistoryDataError(f"{what} must be numbers ({exc})") from None


def check_k(k: Any) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, Integral) or int(k) < 1:
        raise HistoryDataError(f"k must be a positive integer, got {k!r}")
    return int(k)


def query_array(query_embs: Any, dim: int) -> np.ndarray:
    """(n, dim) finite float32 query vectors from one vector or a batch."""
    try:
        q = np.asarray(query_embs, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise HistoryDataError(f"query embeddings must be numbers: {exc}") from None
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        got = q.shape[1] if q.ndim == 2 else f"shape {q.shape}"
        raise HistoryDataError(f"query embedding has dimension {got}, the history uses {dim}")
    if not np.isfinite(q).all():
        raise HistoryDataError("query embeddings contain NaN or infinite values")
    return q


def check_texts(texts: Any) -> list[str]:
    """History question texts: non-blank, encodable strings."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise HistoryDataError("history questions must be a sequence of strings")
    out = []
    for i, t in enumerate(texts):
        out.append(check_text(t, f"history question #{i}"))
    return out


def check_benchmarks(benchmarks: Any, n: int) -> list[str | None] | None:
    """One benchmark name (a string, or None) per question."""
    if benchmarks is None:
        return None
    if isinstance(benchmarks, (str, bytes)) or not isinstance(benchmarks, Sequence) or len(benchmarks) != n:
        raise HistoryDataError("benchmarks must have one entry per text")
    return [None if b is None else check_text(b, f"benchmark #{i}") for i, b in enumerate(benchmarks)]


def check_outcomes(outcomes: Any) -> list[Outcome]:
    """Outcomes (objects or dicts), all validated before anything is changed."""
    if isinstance(outcomes, (str, bytes, Mapping)) or not isinstance(outcomes, Iterable):
        raise HistoryDataError(f"outcomes must be a list of Outcome objects or dicts, got {type(outcomes).__name__}")
    out = []
    for o in outcomes:
        if not isinstance(o, (Outcome, Mapping)):
            raise HistoryDataError(f"an outcome must be an Outcome or a dict, got {type(o).__name__}")
        out.append(o if isinstance(o, Outcome) else Outcome.create(**{str(k): v for k, v in o.items()}))
    return out


def check_name(name: Any, what: str) -> str:
    """A model or source name, stripped like `Outcome`'s."""
    if not isinstance(name, str):
        raise HistoryDataError(f"every {what} must be a non-empty string, got {type(name).__name__}")
    return check_text(name, f"{what} name").strip()


def check_embeddings(embeddings: Any, n: int, dim: int) -> np.ndarray:
    """(n, dim) finite float32 question vectors."""
    try:
        arr = np.asarray(embeddings, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise HistoryDataError(f"embeddings must be numbers: {exc}") from None
    if arr.ndim != 2 or arr.shape != (n, dim):
        raise HistoryDataError(f"embeddings have shape {arr.shape}, expected ({n}, {dim})")
    if not np.all(np.isfinite(arr)):
        raise HistoryDataError("embeddings contain NaN or infinite values")
    return arr


def check_embedding(embedding: Any, dim: int) -> np.ndarray:
    """One question's vector: ``dim`` finite float32 numbers (any shape that flattens to it)."""
    try:
        arr = np.asarray(embedding, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise HistoryDataError(f"embedding must be numbers: {exc}") from None
    if arr.shape != (dim,) or not np.all(np.isfinite(arr)):
        raise HistoryDataError(f"embedding must be {dim} finite numbers, got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class OutcomeArrays:
    """Bulk outcomes, checked: one row each; ``models[model_idx[i]]`` answered row i (likewise sources)."""

    qids: np.ndarray  # int64
    correct: np.ndarray  # float64, in [0, 1]
    output_tokens: np.ndarray  # float64, NaN = unknown
    input_tokens: np.ndarray
    latency_s: np.ndarray
    models: list[str]
    model_idx: np.ndarray
    sources: list[str]
    source_idx: np.ndarray


def _measure(name: str, values: Any, n: int, required: bool = False) -> np.ndarray:
    """A column of ``n`` finite numbers >= 0 (NaN allowed unless ``required``; ``correct`` <= 1)."""
    arr = np.full(n, np.nan) if values is None else numbers(values, name, "biuf")
    if len(arr) != n:
        raise HistoryDataError(f"{name} has {len(arr)} rows, question_ids has {n}")
    bad = (np.isnan(arr) if required else np.zeros(n, bool)) | np.isinf(arr) | (arr < 0)
    if name == "correct":
        bad |= arr > 1
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise HistoryDataError(f"invalid outcome #{i}: {name}={arr[i]!r} (must be finite and >= 0"
                         f"{', <= 1' if name == 'correct' else ''})")
    return arr


def _names(name: str, values: Any, n: int, codes: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
    """A table of distinct names and each row's index into it, from one name, one per row, or
    (with ``codes``) a table the integer codes index."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Sequence):
        raise HistoryDataError(f"{name} must be a name or a sequence of names")
    if codes is not None:
        table = [check_name(u, name) for u in values]
        if len(set(table)) != len(table):
            raise HistoryDataError(f"{name} names must be distinct non-empty strings")
        c = np.asarray(codes).ravel()
        if len(c) != n or c.dtype.kind not in "iu" or (n and (c.min() < 0 or c.max() >= len(table))):
            raise HistoryDataError(f"{name} codes must be {n} integers indexing {len(table)} names")
        return table, c.astype(np.int64)
    if not all(isinstance(u, str) for u in values):
        raise HistoryDataError(f"every {name} must be a non-empty string")
    clean = {u: check_name(u, name) for u in dict.fromkeys(values)}
    if len(values) not in (1, n):
        raise HistoryDataError(f"{name} must be one name or one per row")
    uniq = list(dict.fromkeys(clean.values()))
    code = {u: i for i, u in enumerate(uniq)}
    idx = np.array([code[clean[x]] for x in values], dtype=np.int64)
    return uniq, np.broadcast_to(idx, (n,)) if len(values) == 1 else idx


def check_outcome_arrays(
    question_ids: Any, model: Any, correct: Any, output_tokens: Any = None, *, input_tokens: Any = None,
    latency_s: Any = None, source: Any = "benchmark", model_codes: Any = None, source_codes: Any = None,
) -> OutcomeArrays:
    """The arguments of `History.add_outcome_arrays`, checked as a whole (same rules as `Outcome`);
    question ids are checked to be integers here and to exist by the history."""
    qids = numbers(question_ids, "question ids")
    n = len(qids)
    corr = _measure("correct", correct, n, required=True)
    out_t, in_t = _measure("output_tokens", output_tokens, n), _measure("input_tokens", input_tokens, n)
    lat = _measure("latency_s", latency_s, n)
    models, m_idx = _names("model", model, n, model_codes)
    sources, s_idx = _names("source", source, n, source_codes)
    if n and (np.isnan(qids).any() or np.any(qids != np.round(qids))):
        raise HistoryDataError("question ids must be integers")
    return OutcomeArrays(qids.astype(np.int64), corr, out_t, in_t, lat, models, m_idx, sources, s_idx)
