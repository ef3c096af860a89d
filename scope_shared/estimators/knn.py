"""Training-free estimator: similarity-weighted mean of a model's anchor outcomes.

``p_correct`` = (sum_i w_i * score_i + prior_weight * model_accuracy) / (sum_i w_i + prior_weight),
with ``w_i = exp((sim_i - 1) / temperature)``: an anchor identical to the query weighs 1, a far one
little. The prior (the model's overall accuracy in the history) keeps estimates sane when anchors are
few or far. For a model with few outcomes (not a reference model of `levels`), the estimates are
then moved, in logit space, by the shift that puts their mean over a sample of the history at its
level corrected for which questions it answered (`levels.model_levels`): a model onboarded on a set of
anchors that happened to be easy is not rated too high everywhere. Output tokens: the same weights over anchors with known lengths, averaged in log space;
without any, the model's median length in the history; without that, NaN (the router's default).

Defaults (k=40, temperature=0.3, prior_weight=1.0) were chosen with ``tune_knn`` (leave-one-out
log-loss over 1,500 history questions) on the history split of llmrouter-9 (seed 0), never on its test
split: best 0.5257 (prior 0), 0.5279 with prior 1, kept for robustness with few anchors.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from scope_shared.progress import show_bars
from scope_shared.errors import EstimatorError
from scope_shared.estimators.base import Estimator, RawEstimates
from scope_shared.estimators.levels import logit_shift, model_levels
from scope_shared.estimators.logistic import logit, sigmoid
from scope_shared.history import Anchors, History

#: history questions over which a model's mean estimate is put at its level
LEVEL_SAMPLE = 400


class KNNEstimator(Estimator):
    """Similarity-weighted anchor outcomes, shrunk toward the model's overall accuracy."""

    name = "knn"

    def __init__(self, k: int = 40, temperature: float = 0.3, prior_weight: float = 1.0, level_correction: bool = True) -> None:
        if not (_integer(k) and k > 0 and _finite(temperature) and temperature > 0 and _finite(prior_weight) and prior_weight >= 0):
            raise EstimatorError(
                f"KNNEstimator needs an integer k > 0, temperature > 0 and prior_weight >= 0 (finite numbers), "
                f"got k={k!r}, temperature={temperature!r}, prior_weight={prior_weight!r}"
            )
        self.k = k
        self.temperature = temperature
        self.prior_weight = prior_weight
        self.level_correction = bool(level_correction)
        self._offsets: dict[str, tuple[tuple, float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        extra = "" if self.level_correction else ", level_correction=False"
        return f"KNNEstimator(k={self.k}, temperature={self.temperature}, prior_weight={self.prior_weight}{extra})"

    def level_offsets(self, history: History, models: Sequence[str]) -> np.ndarray:
        """Per model, the logit shift that puts its mean estimate over a sample of the history at
        its level (`levels.model_levels`); 0 for a reference model, whose level is its mean outcome.
        Cached per model until its outcome count or the history's length changes."""
        levels = model_levels(history, models)
        out = np.zeros(len(models))
        for j, m in enumerate(models):
            target = levels[m]
            if target.method != "irt":
                continue
            key = (id(history), len(history), history.n_outcomes(m), target.level)
            with self._lock:
                hit = self._offsets.get(m)
            if hit is not None and hit[0] == key:
                out[j] = hit[1]
                continue
            rng = np.random.default_rng(len(history))
            ids = np.sort(rng.choice(len(history), size=min(LEVEL_SAMPLE, len(history)), replace=False))
            vecs = history.vectors(ids)
            anchors = history.anchors(vecs, [m], self.k)
            prior = np.array([[history.model_stats(m)["accuracy"]]])
            p = weighted_accuracy(self.weights(anchors), anchors.scores, prior, self.prior_weight)
            out[j] = logit_shift(logit(p[:, 0]), target.level)
            with self._lock:
                self._offsets[m] = (key, float(out[j]))
        return out

    def weights(self, anchors: Anchors) -> np.ndarray:
        """Anchor weights (n_q, n_m, k), zero on empty slots."""
        w = np.exp((anchors.sims.astype(np.float64) - 1.0) / self.temperature)
        return np.where(anchors.mask, w, 0.0)

    def predict(
        self,
        queries: Sequence[str],
        query_embs: np.ndarray,
        anchors: Anchors,
        history: History,
    ) -> RawEstimates:
        w = self.weights(anchors)
        stats = [history.model_stats(m) for m in anchors.models]
        prior = np.array([s["accuracy"] for s in stats])[None, :]
        med_tok = np.array([s["median_output_tokens"] for s in stats])[None, :]
        p = weighted_accuracy(w, anchors.scores, prior, self.prior_weight)
        if self.level_correction:  # models with few outcomes: onto their level, corrected for which questions
            p = on_level(p, self.level_offsets(history, anchors.models))
        known = anchors.mask & np.isfinite(anchors.tokens)
        wt = np.where(known, w, 0.0)
        logt = np.where(known, np.log1p(np.nan_to_num(anchors.tokens.astype(np.float64))), 0.0)
        wsum = wt.sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            tok = np.expm1((wt * logt).sum(-1) / wsum)
        tok = np.where(wsum > 0, tok, np.broadcast_to(med_tok, tok.shape))
        return RawEstimates(
            p_correct=np.clip(p, 0.0, 1.0),
            output_tokens=tok,
            n_anchors=anchors.mask.sum(-1),
        )


def weighted_accuracy(w: np.ndarray, scores: np.ndarray, prior: np.ndarray, prior_weight: float) -> np.ndarray:
    """The kNN estimate: anchor scores averaged with weights ``w`` (zero on empty slots), plus
    ``prior_weight`` pseudo-anchors at the model's overall accuracy ``prior``; (n_q, n_m)."""
    s = np.nan_to_num(scores.astype(np.float64))
    return ((w * s).sum(-1) + prior_weight * prior) / (w.sum(-1) + prior_weight)


def on_level(p: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """kNN estimates ``p`` (queries, models) moved onto their models' levels by the logit ``offsets``
    of `KNNEstimator.level_offsets` (the estimates themselves where every offset is 0)."""
    return sigmoid(logit(p) + offsets[None, :]) if np.any(offsets) else p


def _integer(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _finite(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and bool(np.isfinite(v))


def loo_log_loss(
    estimator: KNNEstimator, history: History, models: Sequence[str], sample: np.ndarray, anchors: Anchors
) -> float:
    """Mean binary log-loss of leave-one-out predictions on history questions ``sample``."""
    raw = estimator.predict([""] * len(sample), history.vectors(sample), anchors, history)
    truth = np.full(raw.p_correct.shape, np.nan)
    for j, m in enumerate(models):
        arr = history.model_arrays(m)
        has, pos = _lookup(arr.ids, sample)
        truth[has, j] = arr.scores[pos[has]]
    p = np.clip(raw.p_correct, 1e-4, 1 - 1e-4)
    ll = -(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    return float(np.nanmean(ll))


def _lookup(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.clip(np.searchsorted(ids, wanted), 0, max(len(ids) - 1, 0))
    return (ids[pos] == wanted) if len(ids) else np.zeros(len(wanted), bool), pos


def tune_knn(
    history: History,
    ks: Sequence[int] = (5, 10, 20, 40),
    temperatures: Sequence[float] = (0.02, 0.05, 0.1, 0.3, 1.0),
    prior_weights: Sequence[float] = (0.0, 1.0, 4.0),
    sample_size: int = 1500,
    seed: int = 0,
) -> tuple[KNNEstimator, dict[str, float]]:
    """Choose k, temperature and prior weight by leave-one-out log-loss on the history itself."""
    rng = np.random.default_rng(seed)
    models = history.models
    sample = np.sort(rng.choice(len(history), size=min(sample_size, len(history)), replace=False))
    anchors_by_k = {
        k: history.anchors(history.vectors(sample), models, k, exclude_ids=sample) for k in ks
    }
    results: dict[str, float] = {}
    best: tuple[float, KNNEstimator] | None = None
    for k, t, b in tqdm(list(itertools.product(ks, temperatures, prior_weights)), desc="tuning kNN", disable=not show_bars()):
        est = KNNEstimator(k, t, b)
        loss = loo_log_loss(est, history, models, sample, anchors_by_k[k])
        results[f"k={k},t={t},prior={b}"] = loss
        if best is None or loss < best[0]:
            best = (loss, est)
    assert best is not None
    return best[1], results
