"""Model-agnostic features of a (query, model) pair, computed from the model's behaviour only.

A model enters only through what it did in the history: its k anchors (similarity, outcome, output
length) and summary statistics of all its outcomes. Nothing here sees a model's name, so a model
added to the history after training gets features of the same kind.

Per pair, three blocks:

- ``hand`` (``N_HAND`` numbers): kNN means of the anchor outcomes at several similarity temperatures
  (shrunk to the model's accuracy), plain means of the nearest 5 and all anchors, similarity
  statistics, the model's overall accuracy and (log) outcome count, its accuracy on the query's
  neighbourhood (mean, over the 10 nearest anchors, of the model's accuracy on each anchor's
  benchmark: far less noisy than the anchors' own outcomes), a *ridge probe* (a ridge
  regression of the model's outcomes on the question embeddings, fitted in closed form on the
  history, read at the query), and length evidence: the weighted log length of the anchors and the
  model's median log length, each 0 when unknown and paired with a 0/1 "known" indicator, so a
  value means the same whether or not the training history had lengths.
- ``aset`` (k x ``N_ANCHOR``): per anchor similarity, outcome, log length (0 when unknown) and
  whether it is known, for a learned set encoder.
- ``base_logtok``: the kNN estimate of log(1 + output tokens), NaN when nothing is known; the learned
  length head predicts a correction to it.

Leave-one-out: for a history question (``exclude_ids``) its own outcome is removed from the anchors
(by the history), from the accuracy and from the ridge probe (exact closed-form LOO), so training
features look like features of a new question.

Length features are evidence, never required: a model may come with or without output lengths,
whatever the training history had (training hides them for a share of pairs, `hide_lengths`, and
the network pins inputs that never varied in training).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scope_shared.estimators.logistic import logit
from scope_shared.history import Anchors, History

TEMPERATURES = (0.02, 0.05, 0.1, 0.3, 1.0)
RIDGE_LAMBDAS = (1.0, 10.0)
N_ANCHOR = 4
HAND_NAMES = (
    [f"knn_t{t}" for t in TEMPERATURES]
    + ["mean_top5", "mean_all", "sim_max", "sim_mean", "log_evidence"]
    + ["model_acc", "log_n", "bench_acc"]
    + [f"ridge_l{lam}" for lam in RIDGE_LAMBDAS]
    + ["len_knn", "len_knn_known", "len_model", "len_model_known"]
)
N_HAND = len(HAND_NAMES)
LENGTH_HAND = [HAND_NAMES.index(n) for n in ("len_knn", "len_knn_known", "len_model", "len_model_known")]
LENGTH_ANCHOR = [2, 3]  # aset columns: log length, known
_EPS = 1e-3


@dataclass(frozen=True)
class ModelSummary:
    """What the history says about one model as a whole (see `summarize_model`)."""

    ids: np.ndarray  # sorted question ids with an outcome
    scores: np.ndarray  # mean score per id
    accuracy: float
    median_logtok: float  # NaN when no length is known
    ridge_mean: float
    ridge_w: np.ndarray  # (len(RIDGE_LAMBDAS), dim)
    ridge_fit: np.ndarray  # (len(RIDGE_LAMBDAS), n) in-sample predictions (centred)
    ridge_lev: np.ndarray  # (len(RIDGE_LAMBDAS), n) leverages, for exact leave-one-out
    q_codes: np.ndarray  # (n_history,) benchmark code of every history question
    bench_sum: np.ndarray  # (n_codes,) sum of the model's scores per benchmark
    bench_n: np.ndarray  # (n_codes,) its outcome count per benchmark

    @property
    def n(self) -> int:
        return int(len(self.ids))


def summarize_model(history: History, model: str) -> ModelSummary:
    """Accuracy, typical length and the ridge probe of ``model``'s outcomes (closed form, numpy)."""
    arr = history.model_arrays(model)
    y = arr.scores.astype(np.float64)
    x = history.embeddings[arr.ids].astype(np.float64)
    mean = float(y.mean()) if len(y) else 0.5
    toks = arr.tokens[np.isfinite(arr.tokens)]
    med = float(np.median(np.log1p(toks))) if len(toks) else float("nan")
    d = history.dim
    n_l = len(RIDGE_LAMBDAS)
    w = np.zeros((n_l, d))
    fit = np.zeros((n_l, len(y)))
    lev = np.zeros((n_l, len(y)))
    if len(y) >= 2:
        s, v = np.linalg.eigh(x.T @ x)
        s = np.clip(s, 0.0, None)
        xv = x @ v  # (n, d)
        xty = v.T @ (x.T @ (y - mean))
        for li, lam in enumerate(RIDGE_LAMBDAS):
            inv = 1.0 / (s + lam)
            w[li] = v @ (inv * xty)
            fit[li] = x @ w[li]
            lev[li] = (xv**2) @ inv
    _, codes = np.unique(np.array([b or "" for b in history.benchmarks], dtype=object).astype(str), return_inverse=True)
    n_codes = int(codes.max()) + 1 if len(codes) else 1
    bsum = np.bincount(codes[arr.ids], weights=y, minlength=n_codes)
    bn = np.bincount(codes[arr.ids], minlength=n_codes).astype(np.float64)
    return ModelSummary(arr.ids, arr.scores, mean, med, mean, w, fit, lev, codes, bsum, bn)


def _in_model(summary: ModelSummary, qids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if summary.n == 0:
        return np.zeros(len(qids), bool), np.zeros(len(qids), np.int64)
    pos = np.clip(np.searchsorted(summary.ids, qids), 0, summary.n - 1)
    return (summary.ids[pos] == qids) & (qids >= 0), pos


def pair_features(
    query_embs: np.ndarray,
    anchors: Anchors,
    summaries: list[ModelSummary],
    exclude_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hand (n_q, n_m, N_HAND), aset (n_q, n_m, k, N_ANCHOR), base_logtok (n_q, n_m)), float32.

    ``anchors`` must already exclude ``exclude_ids`` (``history.anchors(..., exclude_ids=...)``).
    """
    q = np.asarray(query_embs, dtype=np.float64)
    n_q, n_m, k = anchors.ids.shape
    mask = anchors.mask
    sims = np.where(mask, anchors.sims.astype(np.float64), 0.0)
    scores = np.where(mask, np.nan_to_num(anchors.scores.astype(np.float64)), 0.0)
    known = mask & np.isfinite(anchors.tokens)
    logt = np.where(known, np.log1p(np.nan_to_num(anchors.tokens.astype(np.float64))), 0.0)
    n_anch = mask.sum(-1)

    acc = np.empty((n_q, n_m))
    log_n = np.empty((n_q, n_m))
    ridge = np.empty((n_q, n_m, len(RIDGE_LAMBDAS)))
    med = np.empty((n_q, n_m))
    for j, sm in enumerate(summaries):
        acc[:, j] = sm.accuracy
        log_n[:, j] = np.log1p(sm.n)
        med[:, j] = sm.median_logtok
        ridge[:, j, :] = sm.ridge_mean + q @ sm.ridge_w.T
        if exclude_ids is not None and sm.n > 1:
            has, pos = _in_model(sm, np.asarray(exclude_ids))
            if has.any():
                p = pos[has]
                yi = sm.scores[p].astype(np.float64)
                acc[has, j] = (sm.accuracy * sm.n - yi) / (sm.n - 1)
                log_n[has, j] = np.log1p(sm.n - 1)
                t = yi - sm.ridge_mean
                for li in range(len(RIDGE_LAMBDAS)):
                    lev = np.clip(sm.ridge_lev[li, p], 0.0, 0.99)
                    t_loo = t - (t - sm.ridge_fit[li, p]) / (1 - lev)
                    ridge[has, j, li] = acc[has, j] + t_loo
    bench_acc = np.empty((n_q, n_m))
    near = mask[..., :10]
    for j, sm in enumerate(summaries):
        ids_j = np.where(near[:, j], anchors.ids[:, j, :10], 0)
        c = sm.q_codes[ids_j] if len(sm.q_codes) else np.zeros_like(ids_j)
        tot, cnt = sm.bench_sum[c], sm.bench_n[c]
        if exclude_ids is not None and sm.n > 1:
            has, pos = _in_model(sm, np.asarray(exclude_ids))
            own = np.where(has, sm.q_codes[np.clip(exclude_ids, 0, len(sm.q_codes) - 1)], -1)
            same = c == own[:, None]
            yi = np.where(has, sm.scores[pos], 0.0)[:, None]
            tot, cnt = tot - same * yi, cnt - same
        b_acc = (tot + 5.0 * acc[:, j : j + 1]) / (cnt + 5.0)
        bench_acc[:, j] = np.where(near[:, j].any(1), (b_acc * near[:, j]).sum(1) / np.maximum(near[:, j].sum(1), 1), acc[:, j])
    hand = np.zeros((n_q, n_m, N_HAND))
    col = 0
    for t in TEMPERATURES:
        w = np.where(mask, np.exp((sims - 1.0) / t), 0.0)
        hand[..., col] = logit(((w * scores).sum(-1) + acc) / (w.sum(-1) + 1.0), _EPS)
        col += 1
    top5 = mask[..., :5]
    hand[..., col] = logit((scores[..., :5].sum(-1) + acc) / (top5.sum(-1) + 1.0), _EPS)
    hand[..., col + 1] = logit((scores.sum(-1) + acc) / (n_anch + 1.0), _EPS)
    hand[..., col + 2] = np.where(n_anch > 0, sims.max(-1, initial=0.0), 0.0)
    hand[..., col + 3] = sims.sum(-1) / np.maximum(n_anch, 1)
    w05 = np.where(mask, np.exp((sims - 1.0) / 0.05), 0.0)
    hand[..., col + 4] = np.log1p(w05.sum(-1))
    col += 5
    hand[..., col] = logit(acc, _EPS)
    hand[..., col + 1] = log_n / 5.0
    hand[..., col + 2] = logit(bench_acc, _EPS)
    col += 3
    for li in range(len(RIDGE_LAMBDAS)):
        hand[..., col] = np.clip(ridge[..., li], -0.5, 1.5)
        col += 1
    wt = np.where(known, np.exp((sims - 1.0) / 0.1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        knn_len = np.where(wt.sum(-1) > 0, (wt * logt).sum(-1) / wt.sum(-1), np.nan)
    base = np.where(np.isfinite(knn_len), knn_len, med)
    hand[..., col] = np.nan_to_num(knn_len) / 5.0
    hand[..., col + 1] = np.isfinite(knn_len)
    hand[..., col + 2] = np.nan_to_num(med) / 5.0
    hand[..., col + 3] = np.isfinite(med)
    aset = np.stack([sims, scores, logt / 5.0, known.astype(np.float64)], axis=-1)
    return hand.astype(np.float32), aset.astype(np.float32), base.astype(np.float32)


def hide_lengths(hand: np.ndarray, aset: np.ndarray, base: np.ndarray, rows: np.ndarray) -> None:
    """In place: make the ``rows`` pairs (boolean, shaped like ``base``) look length-free.

    The result equals `pair_features` of the same model with every output length unknown (the
    test suite checks it), which is how training teaches the network models without lengths.
    """
    for c in LENGTH_HAND:
        hand[..., c][rows] = 0.0
    for c in LENGTH_ANCHOR:
        aset[..., c][rows] = 0.0
    base[rows] = np.nan
