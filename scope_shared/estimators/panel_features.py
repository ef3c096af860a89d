"""What the panel estimator reads about a question: the known models' kNN estimates there.

A *panel* is the set of reference models (those with outcomes on much of the history). For a
question, each panel model's training-free kNN estimate (`weighted_accuracy`, the same formula and
settings as `KNNEstimator`) says how that model is likely to do; together they describe the
question's difficulty and what it tests, in terms any model's outcomes can be regressed on.

At routing time the estimates come from the history's index (`history.anchors`). To *fit* the
panel, features are needed on history questions as if those were new. `NeighbourLists` holds, for a
few history questions, their nearest other history questions (one matrix product and one partial
sort for all models at once), in two views: the question itself hidden (leave-one-out) and its whole
benchmark hidden (leave-benchmark-out, what a new kind of question looks like). Every model's kNN
estimate on those questions is then read off the lists: a model takes its first ``k`` neighbours
among the questions it answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scope_shared.estimators import logistic  # the link itself; `logit` below is the panel's clipping of it
from scope_shared.estimators.knn import KNNEstimator, weighted_accuracy
from scope_shared.history import History

#: estimates are clipped to [EPS, 1 - EPS] before taking logits
EPS = 0.02
#: how many nearest history questions make a query's closeness to the history
N_CLOSE = 5
#: neighbours kept per question: this many times k, so models answering part of the history still find k
LIST_FACTOR = 4
#: how many nearest history questions say which benchmarks a question is like
N_SHARE = 10


def logit(p: np.ndarray) -> np.ndarray:
    """The panel's log-odds: kNN estimates clipped to [EPS, 1 - EPS] first."""
    return logistic.logit(p, EPS)


@dataclass
class NeighbourLists:
    """For questions ``ids`` of a history: their nearest other questions, best first (see the module
    doc). ``nbr``/``sims`` (n_rows, K); -1 / -inf where fewer than K exist; ``closeness`` (n_rows,)."""

    ids: np.ndarray
    nbr: np.ndarray
    sims: np.ndarray
    closeness: np.ndarray

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, query_vecs: np.ndarray, size: int) -> "NeighbourLists":
        """Neighbours among ``vectors`` (every history question) of history questions ``ids`` (their
        vectors ``query_vecs``), each question itself hidden (leave-one-out)."""
        return cls.from_sims(similarities(vectors, ids, query_vecs), ids, size)

    @classmethod
    def from_sims(cls, sims: np.ndarray, ids: np.ndarray, size: int) -> "NeighbourLists":
        """The lists from a similarity block (n_rows, n_history) in which hidden questions are -inf."""
        n = sims.shape[1]
        size = max(1, min(size, n))
        top = np.argpartition(-sims, size - 1, axis=1)[:, :size] if size < n else np.tile(np.arange(n), (len(ids), 1))
        ts = np.take_along_axis(sims, top, 1)
        order = np.argsort(-ts, axis=1, kind="stable")
        top, ts = np.take_along_axis(top, order, 1), np.take_along_axis(ts, order, 1)
        top = np.where(np.isfinite(ts), top, -1)
        near = ts[:, : min(N_CLOSE, size)]
        close = np.where(np.isfinite(near), near, 0.0).mean(1)
        return cls(np.asarray(ids, np.int64), top, ts, close)

    def rows(self, pick: np.ndarray) -> "NeighbourLists":
        return NeighbourLists(self.ids[pick], self.nbr[pick], self.sims[pick], self.closeness[pick])

    def estimates(self, scores: np.ndarray, accuracy: np.ndarray, knn: KNNEstimator) -> np.ndarray:
        """kNN estimates (n_rows, m) of score columns ``scores`` (n_history, m), NaN = no outcome:
        each column's first ``knn.k`` neighbours with an outcome, weighted as `KNNEstimator` does."""
        ok = self.nbr >= 0
        s = scores[np.where(ok, self.nbr, 0)]  # (r, K, m)
        has = ~np.isnan(s) & ok[:, :, None]
        take = has & (np.cumsum(has, axis=1) <= knn.k)
        w = np.exp((np.where(ok, self.sims, 0.0)[:, :, None].astype(np.float64) - 1.0) / knn.temperature)
        w = np.where(take, w, 0.0)
        # weighted_accuracy sums over the last axis: move the neighbour axis there
        return weighted_accuracy(np.moveaxis(w, 1, 2), np.moveaxis(np.where(take, s, 0.0), 1, 2),
                                 np.asarray(accuracy)[None, :], knn.prior_weight)


def similarities(vectors: np.ndarray, ids: np.ndarray, query_vecs: np.ndarray) -> np.ndarray:
    """(n_rows, n_history) similarities of history questions ``ids`` to every history question,
    each to itself -inf (hidden)."""
    sims = np.asarray(query_vecs, np.float32) @ np.asarray(vectors, np.float32).T
    ids = np.asarray(ids, np.int64)
    inside = (ids >= 0) & (ids < sims.shape[1])
    sims[np.flatnonzero(inside), ids[inside]] = -np.inf
    return sims


def hide_benchmarks(sims: np.ndarray, row_benchmarks: Sequence[str | None], benchmarks: Sequence[str | None]) -> np.ndarray:
    """``sims`` with every question of each row's own benchmark hidden (in place; rows without a
    benchmark hide nothing more)."""
    codes = {b: i for i, b in enumerate(sorted({b for b in benchmarks if b is not None}))}
    col = np.array([codes[b] if b is not None else -1 for b in benchmarks])
    row = np.array([codes.get(b, -2) if b is not None else -2 for b in row_benchmarks])
    sims[row[:, None] == col[None, :]] = -np.inf
    return sims


def score_matrix(history: History, models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n_history, m) mean scores (NaN where a model has no outcome) and each model's accuracy."""
    scores = history.score_matrix(models)
    acc = np.array([history.model_stats(m)["accuracy"] for m in models], np.float64)
    return scores, acc


def own_estimates(vectors: np.ndarray, row_ids: np.ndarray, row_vecs: np.ndarray, model_ids: np.ndarray,
                  model_scores: np.ndarray, accuracy: float, knn: KNNEstimator) -> np.ndarray:
    """One model's kNN estimates on rows, from its own outcomes only (``model_ids`` with
    ``model_scores``), each row's own question hidden: a product with the model's questions only."""
    if not len(model_ids):
        return np.full(len(row_ids), accuracy)
    sims = np.asarray(row_vecs, np.float32) @ np.asarray(vectors[model_ids], np.float32).T
    sims[np.asarray(row_ids)[:, None] == np.asarray(model_ids)[None, :]] = -np.inf
    kk = min(knn.k, len(model_ids))
    idx = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < len(model_ids) else np.tile(np.arange(len(model_ids)), (len(row_ids), 1))
    ts = np.take_along_axis(sims, idx, 1)
    mask = np.isfinite(ts)
    w = np.where(mask, np.exp((np.where(mask, ts, 0.0).astype(np.float64) - 1.0) / knn.temperature), 0.0)
    sc = np.where(mask, np.asarray(model_scores, np.float64)[idx], 0.0)
    return weighted_accuracy(w[:, None], sc[:, None], np.array([accuracy]), knn.prior_weight)[:, 0]


def closeness(history: History, query_embs: np.ndarray) -> np.ndarray:
    """Mean similarity of each query's `N_CLOSE` nearest history questions (the index's view)."""
    return near_questions(history, query_embs)[0]


def near_questions(history: History, query_embs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's closeness (see `closeness`) and its `N_SHARE` nearest history question ids (-1 pads)."""
    k = min(max(N_CLOSE, N_SHARE), len(history))
    sims, ids = history.search(query_embs, k)
    near = min(N_CLOSE, k)
    return np.where(ids[:, :near] >= 0, sims[:, :near], 0.0).mean(1), ids[:, :N_SHARE]


def benchmark_codes(history: History) -> tuple[tuple[str, ...], np.ndarray]:
    """The history's benchmark names (sorted) and each question's code in them (-1: none)."""
    benchmarks = history.benchmarks
    names = tuple(sorted({b for b in benchmarks if b is not None}))
    index = {b: i for i, b in enumerate(names)}
    return names, np.array([index[b] if b is not None else -1 for b in benchmarks], np.int64)


def benchmark_shares(neighbour_ids: np.ndarray, codes: np.ndarray, n_benchmarks: int) -> np.ndarray:
    """(n, n_benchmarks): the share of each benchmark among a question's first `N_SHARE` neighbours
    (ids -1, unknown benchmarks and ids past ``codes`` count for none): which kinds of question it is like."""
    ids = np.asarray(neighbour_ids)[:, :N_SHARE]
    ok = (ids >= 0) & (ids < len(codes))
    c = np.where(ok, codes[np.where(ok, ids, 0)], -1)
    out = np.zeros((len(ids), n_benchmarks))
    for b in range(n_benchmarks):
        out[:, b] = (c == b).sum(1)
    return out / max(ids.shape[1], 1)
