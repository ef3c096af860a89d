"""Per-model outcome columns: sparse over questions, aggregated when a question is seen twice.

A column is five parallel numpy arrays sorted by question id (16 bytes per (question, model) pair;
the two counts are uint16, widened to int32 if a pair is ever seen 65,535 times):
id (int32), outcome count, mean score, typical output tokens and the count of outcomes with a token
figure. Repeated outcomes for the same question are averaged; token counts are averaged in log space
(``expm1(mean(log1p(tokens)))``), so one very long answer does not dominate.

Single outcomes (live feedback) go to a small pending dict and are merged in one vectorised pass the
next time the arrays are read; bulk loads (`add_many`) merge directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class ModelArrays:
    """A model's outcomes as sorted arrays: question ids, mean score, typical output tokens (NaN = unknown)."""

    ids: np.ndarray
    scores: np.ndarray
    tokens: np.ndarray


class ModelColumn:
    """One model's aggregated outcomes, numpy-backed; not thread-safe on its own (History locks)."""

    __slots__ = ("_ids", "_n", "_score", "_tokens", "_ntok", "_pending", "_stats")

    def __init__(self) -> None:
        self._ids = np.zeros(0, np.int32)
        self._n = np.zeros(0, np.uint16)
        self._score = np.zeros(0, np.float32)
        self._tokens = np.zeros(0, np.float32)  # NaN where no outcome had a token count
        self._ntok = np.zeros(0, np.uint16)
        self._pending: dict[int, list[float]] = {}  # qid -> [score_sum, n, logtok_sum, n_tok]
        self._stats: dict[str, float] | None = None

    # ---------------------------------------------------------------- writing
    def add(self, qid: int, score: float, output_tokens: float | None) -> None:
        """Record one outcome (cheap: merged into the arrays lazily)."""
        s = self._pending.setdefault(int(qid), [0.0, 0, 0.0, 0])
        s[0] += score
        s[1] += 1
        if output_tokens is not None and math.isfinite(output_tokens):
            s[2] += math.log1p(output_tokens)
            s[3] += 1
        self._stats = None

    def adjust(self, qid: int, delta: float) -> None:
        """Change the score of one outcome already recorded for ``qid`` by ``delta`` (a replaced
        outcome: the count stays, the mean moves by ``delta / n``)."""
        s = self._pending.setdefault(int(qid), [0.0, 0, 0.0, 0])
        s[0] += delta
        self._stats = None

    def add_many(self, qids: np.ndarray, scores: np.ndarray, tokens: np.ndarray | None = None) -> None:
        """Record many outcomes at once; ``tokens`` NaN where unknown. Same semantics as `add`."""
        qids = np.asarray(qids, dtype=np.int64).ravel()
        if len(qids) == 0:
            return
        scores = np.asarray(scores, dtype=np.float64).ravel()
        tokens = np.full(len(qids), np.nan) if tokens is None else np.asarray(tokens, np.float64).ravel()
        self._flush()
        u, inv = np.unique(qids, return_inverse=True)
        n = np.bincount(inv, minlength=len(u))
        ssum = np.bincount(inv, scores, minlength=len(u))
        known = np.isfinite(tokens)
        lsum = np.bincount(inv, np.where(known, np.log1p(np.where(known, tokens, 0.0)), 0.0), minlength=len(u))
        ntok = np.bincount(inv, known.astype(np.float64), minlength=len(u)).astype(np.int64)
        self._merge(u, n, ssum, lsum, ntok)

    def _flush(self) -> None:
        if not self._pending:
            return
        items = sorted(self._pending.items())
        self._pending = {}
        u = np.array([q for q, _ in items], dtype=np.int64)
        v = np.array([s for _, s in items], dtype=np.float64).reshape(len(items), 4)
        self._merge(u, v[:, 1].astype(np.int64), v[:, 0], v[:, 2], v[:, 3].astype(np.int64))

    def _merge(self, u: np.ndarray, n: np.ndarray, ssum: np.ndarray, lsum: np.ndarray, ntok: np.ndarray) -> None:
        """Fold per-question sums (``u`` sorted, unique) into the arrays."""
        self._stats = None
        m = len(self._ids)
        pos = np.searchsorted(self._ids, u)
        hit = np.zeros(len(u), bool)
        inside = pos < m
        hit[inside] = self._ids[pos[inside]] == u[inside]
        if hit.any():
            p = pos[hit]
            n0, nt0 = self._n[p].astype(np.int64), self._ntok[p].astype(np.int64)
            n1, nt1 = n0 + n[hit], nt0 + ntok[hit]
            self._score[p] = (self._score[p] * n0 + ssum[hit]) / n1
            old_log = np.where(nt0 > 0, np.log1p(np.nan_to_num(self._tokens[p].astype(np.float64))) * nt0, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                self._tokens[p] = np.where(nt1 > 0, np.expm1((old_log + lsum[hit]) / nt1), np.nan)
            self._widen(max(int(n1.max()), int(nt1.max())))
            self._n[p], self._ntok[p] = n1, nt1
        new = ~hit
        if new.any():
            at = pos[new]
            with np.errstate(invalid="ignore", divide="ignore"):
                tok = np.where(ntok[new] > 0, np.expm1(lsum[new] / np.maximum(ntok[new], 1)), np.nan)
            self._widen(int(n[new].max()))
            self._ids = np.insert(self._ids, at, u[new].astype(np.int32))
            self._n = np.insert(self._n, at, n[new].astype(self._n.dtype))
            self._score = np.insert(self._score, at, (ssum[new] / n[new]).astype(np.float32))
            self._tokens = np.insert(self._tokens, at, tok.astype(np.float32))
            self._ntok = np.insert(self._ntok, at, ntok[new].astype(self._ntok.dtype))

    def _widen(self, top: int) -> None:
        if top > np.iinfo(self._n.dtype).max:
            self._n, self._ntok = self._n.astype(np.int64), self._ntok.astype(np.int64)

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        self._flush()
        return len(self._ids)

    def arrays(self) -> ModelArrays:
        """Sorted question ids (int32), mean scores and typical output tokens (float32, NaN = unknown)."""
        self._flush()
        return ModelArrays(self._ids, self._score, self._tokens)

    def member(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For an array of question ids: (has an outcome?, position in the arrays)."""
        arr = self.arrays().ids
        if len(arr) == 0:
            return np.zeros(ids.shape, dtype=bool), np.zeros(ids.shape, dtype=np.int64)
        ids32 = np.asarray(ids).astype(np.int32, copy=False)
        pos = np.searchsorted(arr, ids32)
        np.minimum(pos, len(arr) - 1, out=pos)
        return (arr[pos] == ids32) & (ids32 >= 0), pos

    def stats(self) -> dict[str, float]:
        """Overall accuracy, outcome count and median output tokens, cached until the next change."""
        if self._stats is None or self._pending:
            a = self.arrays()
            toks = a.tokens[np.isfinite(a.tokens)]
            self._stats = {
                "accuracy": float(a.scores.mean(dtype=np.float64)) if len(a.scores) else float("nan"),
                "n_outcomes": float(len(a.ids)),
                "median_output_tokens": float(np.median(toks)) if len(toks) else float("nan"),
            }
        return dict(self._stats)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._ids, self._n, self._score, self._tokens, self._ntok))
