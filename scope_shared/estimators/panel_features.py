"""What the panel estimator reads about a question: the known models' kNN estimates there.

A *panel* is the set of reference models (those with outcomes on much of the history). For a
question, each panel model's training-free kNN estimate (`weighted_accuracy`, the same formula and
settings as `KNNEstimator`) says how that model is likely to do; together they describe the
question's difficulty and what it tests, in terms any model's outcomes can be regressed on.

At routing time the estimates come from the history's index (`history.anchors`). To *fit* the
panel, features are needed on history questions as if those were new, so `HistorySnapshot` holds a
dense copy of the history (unit vectors, a score matrix) and computes the same estimates by brute
force while hiding chosen questions: the question itself (leave-one-out) or its whole benchmark
(leave-benchmark-out, what a new kind of question looks like).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scope_shared.estimators.knn import KNNEstimator, weighted_accuracy
from scope_shared.history import History

#: estimates are clipped to [EPS, 1 - EPS] before taking logits
EPS = 0.02
#: how many nearest history questions make a query's closeness to the history
N_CLOSE = 5
#: cap on the similarity block one brute-force step holds (floats)
BLOCK = 8_000_000


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass
class HistorySnapshot:
    """A dense copy of the parts of a history the panel fit reads (see the module doc)."""

    vectors: np.ndarray  # (n, d) unit vectors
    benchmarks: np.ndarray  # (n,) object, None where unknown
    models: tuple[str, ...]
    scores: np.ndarray  # (n, m) mean score, NaN where the model has no outcome
    accuracy: np.ndarray  # (m,) overall accuracy of each model

    @classmethod
    def of(cls, history: History, models: Sequence[str]) -> "HistorySnapshot":
        n = len(history)
        scores = np.full((n, len(models)), np.nan, np.float32)
        for j, m in enumerate(models):
            arr = history.model_arrays(m)
            scores[arr.ids, j] = arr.scores
        acc = np.array([history.model_stats(m)["accuracy"] for m in models], np.float64)
        return cls(np.asarray(history.embeddings, np.float32), np.asarray(history.benchmarks, dtype=object),
                   tuple(models), scores, acc)

    def column(self, model: str) -> int:
        return self.models.index(model)

    def estimates(
        self,
        query_vecs: np.ndarray,
        columns: Sequence[int],
        knn: KNNEstimator,
        hide_ids: np.ndarray | None = None,
        hide_benchmarks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """kNN estimates (n_q, len(columns)) of the given score columns, and each query's closeness
        (mean similarity of its `N_CLOSE` nearest visible questions), hiding per query the question
        ``hide_ids[i]`` and/or every question of benchmark ``hide_benchmarks[i]``."""
        q = np.asarray(query_vecs, np.float32)
        n, k = len(self.vectors), knn.k
        out = np.empty((len(q), len(columns)))
        close = np.empty(len(q))
        has = ~np.isnan(self.scores[:, list(columns)])  # (n, c)
        step = max(1, BLOCK // max(n, 1))
        for lo in range(0, len(q), step):
            hi = min(lo + step, len(q))
            sims = q[lo:hi] @ self.vectors.T  # (b, n)
            if hide_ids is not None:
                rows = np.arange(hi - lo)
                ids = np.asarray(hide_ids[lo:hi], np.int64)
                ok = (ids >= 0) & (ids < n)
                sims[rows[ok], ids[ok]] = -np.inf
            if hide_benchmarks is not None:
                sims[self.benchmarks[None, :] == np.asarray(hide_benchmarks[lo:hi], dtype=object)[:, None]] = -np.inf
            kk = min(N_CLOSE, n)
            top = -np.partition(-sims, kk - 1, axis=1)[:, :kk]
            close[lo:hi] = np.where(np.isfinite(top), top, 0.0).mean(1)
            for c, col in enumerate(columns):
                s = np.where(has[:, c][None, :], sims, -np.inf)
                kc = min(k, n)
                idx = np.argpartition(-s, kc - 1, axis=1)[:, :kc]
                ts = np.take_along_axis(s, idx, 1)
                mask = np.isfinite(ts)
                w = np.where(mask, np.exp((np.where(mask, ts, 0.0) - 1.0) / knn.temperature), 0.0)
                sc = np.where(mask, self.scores[idx, col], 0.0)
                out[lo:hi, c] = weighted_accuracy(w[:, None], sc[:, None], self.accuracy[col], knn.prior_weight)[:, 0]
        return out, close


def closeness(history: History, query_embs: np.ndarray) -> np.ndarray:
    """Mean similarity of each query's `N_CLOSE` nearest history questions (the index's view)."""
    k = min(N_CLOSE, len(history))
    sims, ids = history.search(query_embs, k)
    return np.where(ids >= 0, sims, 0.0).mean(1)
