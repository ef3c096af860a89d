"""The panel estimator: borrow strength across models, so a model with few outcomes is still sharp.

A model with 50 anchor outcomes has too few neighbours near most queries for kNN alone. But the
*other* models' outcomes near the query say much about the question: how hard it is and what it
tests. The panel estimator reads that as a few latent factors and regresses each model on them:

1. The *panel* is the reference models (outcomes on at least ``min_share`` of the history). For a
   query, each one's kNN estimate (`panel_features`) is taken as a logit; centred and projected on
   their top ``factors`` principal directions (fitted on leave-one-out history questions) they give
   the query's factor scores ``z``.
2. Each model gets ``logit p = b + a . z + c . logit(own kNN estimate)``, a logistic regression on
   its own outcomes (features computed leave-one-out), with a prior: ``a`` is drawn toward the
   reference models' average profile (mean and spread fitted on them), ``c`` toward 0, ``b`` free.
   With 20 outcomes a model is "an average model at its own level"; with thousands its own profile
   and its own neighbours dominate. The free intercept makes the mean estimate on the outcomes equal
   the mean outcome, so the level is right; averaged over the history it is a regression estimate of
   the model's accuracy, with less variance than the plain mean of its anchors.
3. Far from the history the estimate shrinks toward the model's level (`shrinkage`), by an amount
   fitted on leave-one-out and leave-benchmark-out views of the history.

It sees models only through their outcomes, so models added later are served without retraining:
per-model fits are cached and redone when the model's outcomes change by more than ``refit_share``.
Output lengths are the kNN estimator's. With fewer than two reference models it is the kNN estimator.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from scope_shared.progress import show_bars
from scope_shared.errors import EstimatorError
from scope_shared.estimators.base import Estimator, RawEstimates
from scope_shared.estimators.knn import KNNEstimator
from scope_shared.estimators.panel_features import HistorySnapshot, closeness, logit
from scope_shared.estimators.shrinkage import Shrinkage, fit_shrinkage, sigmoid
from scope_shared.history import Anchors, History

#: prior precision of the intercept (practically free) and of the own-kNN coefficient
INTERCEPT_PRECISION = 1e-4
OWN_PRECISION = 1.0
#: smallest prior variance of a factor loading (the reference models may agree too well)
MIN_LOADING_VAR = 0.05


@dataclass(frozen=True)
class Panel:
    """The model-independent part of a fit: reference models, factor basis, loading prior, shrinkage."""

    reference: tuple[str, ...]
    centre: np.ndarray  # (R,) mean logit of each reference model's kNN estimate
    basis: np.ndarray  # (R, f) principal directions
    loading_mean: np.ndarray  # (f,)
    loading_var: np.ndarray  # (f,)
    shrinkage: Shrinkage
    sizes: tuple[int, ...]  # history length and reference outcome counts when fitted

    def factors(self, reference_p: np.ndarray) -> np.ndarray:
        return (logit(reference_p) - self.centre) @ self.basis


@dataclass(frozen=True)
class ModelFit:
    """One model's regression on the factors: ``coef`` = (b, a..., c), its level as a logit."""

    coef: np.ndarray
    level: float
    n_outcomes: int


class PanelEstimator(Estimator):
    """Latent-factor estimates from every model's outcomes near the query (see the module doc)."""

    name = "panel"

    def __init__(
        self,
        k: int = 40,
        temperature: float = 0.3,
        prior_weight: float = 1.0,
        factors: int = 3,
        min_share: float = 0.25,
        fit_sample: int = 2000,
        benchmark_sample: int = 150,
        refit_share: float = 0.05,
        shrink: bool = True,
        seed: int = 0,
    ) -> None:
        if not (isinstance(factors, int) and factors > 0 and 0 < min_share <= 1 and fit_sample >= 50
                and benchmark_sample >= 0 and refit_share >= 0):
            raise EstimatorError(
                "PanelEstimator needs factors > 0, 0 < min_share <= 1, fit_sample >= 50, benchmark_sample >= 0 "
                f"and refit_share >= 0; got factors={factors!r}, min_share={min_share!r}, "
                f"fit_sample={fit_sample!r}, benchmark_sample={benchmark_sample!r}, refit_share={refit_share!r}"
            )
        self.knn = KNNEstimator(k, temperature, prior_weight)
        self.k = k
        self.n_factors, self.min_share, self.fit_sample = factors, min_share, fit_sample
        self.benchmark_sample, self.refit_share, self.shrink, self.seed = benchmark_sample, refit_share, shrink, seed
        self._panel: Panel | None = None
        self._fits: dict[str, ModelFit] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (f"PanelEstimator(k={self.k}, factors={self.n_factors}, min_share={self.min_share}, "
                f"shrink={self.shrink})")

    # ---------------------------------------------------------------- prediction
    def predict(self, queries: Sequence[str], query_embs: np.ndarray, anchors: Anchors, history: History) -> RawEstimates:
        own = self.knn.predict(queries, query_embs, anchors, history)
        panel = self.panel(history)
        if panel is None or not len(queries):
            return own
        z = panel.factors(self._reference_estimates(queries, query_embs, anchors, own, history, panel))
        own_logit = logit(own.p_correct)
        eta = np.empty_like(own_logit)
        level = np.empty(len(anchors.models))
        for j, m in enumerate(anchors.models):
            fit = self.model_fit(m, history)
            eta[:, j] = design(z, own_logit[:, j]) @ fit.coef
            level[j] = fit.level
        if self.shrink:
            eta = panel.shrinkage.apply(eta, level[None, :], closeness(history, query_embs))
        return RawEstimates(p_correct=sigmoid(eta), output_tokens=own.output_tokens, n_anchors=own.n_anchors)

    def _reference_estimates(self, queries: Sequence[str], query_embs: np.ndarray, anchors: Anchors,
                             own: RawEstimates, history: History, panel: Panel) -> np.ndarray:
        """The reference models' kNN estimates: read from ``own`` when the router already fetched
        their anchors (routing among known models), else from one more anchor search."""
        col = {m: j for j, m in enumerate(anchors.models)}
        if anchors.k == self.k and all(m in col for m in panel.reference):
            return own.p_correct[:, [col[m] for m in panel.reference]]
        ref = history.anchors(query_embs, panel.reference, self.k)
        return self.knn.predict(queries, query_embs, ref, history).p_correct

    # ---------------------------------------------------------------- fitting
    def reference_models(self, history: History) -> list[str]:
        """Models with outcomes on at least ``min_share`` of the history's questions."""
        n = max(len(history), 1)
        return [m for m in history.models if history.n_outcomes(m) >= max(self.min_share * n, 20)]

    def panel(self, history: History) -> Panel | None:
        """The current panel fit, refitted when the history has changed by more than ``refit_share``."""
        with self._lock:
            ref = tuple(self.reference_models(history))
            if len(ref) < 2:
                return None
            sizes = (len(history), *(history.n_outcomes(m) for m in ref))
            old = self._panel
            if old is None or old.reference != ref or _moved(old.sizes, sizes, self.refit_share):
                self._fit_panel(history, ref, sizes)
            return self._panel

    def _fit_panel(self, history: History, ref: tuple[str, ...], sizes: tuple[int, ...]) -> None:
        rng = np.random.default_rng(self.seed)
        snap = HistorySnapshot.of(history, ref)
        sample = np.sort(rng.choice(len(history), size=min(self.fit_sample, len(history)), replace=False))
        cols = list(range(len(ref)))
        p_s, close_s = snap.estimates(snap.vectors[sample], cols, self.knn, hide_ids=sample)
        f_s = logit(p_s)
        centre = f_s.mean(0)
        _, _, vt = np.linalg.svd(f_s - centre, full_matrices=False)
        basis = vt[: min(self.n_factors, len(ref))].T
        z_s = (f_s - centre) @ basis
        loadings = []
        for j in range(len(ref)):
            y = snap.scores[sample, j]
            has = ~np.isnan(y)
            x = design(z_s[has])
            loadings.append(map_logistic(x, y[has], _prior_mean(y[has], np.zeros(basis.shape[1])),
                                         np.r_[INTERCEPT_PRECISION, np.full(basis.shape[1], 1e-2)])[1:])
        lm = np.mean(loadings, 0)
        lv = np.maximum(np.var(loadings, 0), MIN_LOADING_VAR)
        # model fits need the panel; the shrinkage needs the reference models' fits
        panel = self._panel = Panel(ref, centre, basis, lm, lv, Shrinkage(), sizes)
        self._fits = {}
        if self.shrink:
            shrinkage = self._fit_shrinkage(history, snap, panel, sample, p_s, close_s, rng)
            self._panel = Panel(ref, centre, basis, lm, lv, shrinkage, sizes)

    def _fit_shrinkage(self, history: History, snap: HistorySnapshot, panel: Panel, sample: np.ndarray,
                       p_s: np.ndarray, close_s: np.ndarray, rng: np.random.Generator) -> Shrinkage:
        """Fit the shrinkage on leave-one-out (``sample``) and leave-benchmark-out views."""
        views = [(sample, p_s, close_s)]
        names = sorted({b for b in snap.benchmarks if b is not None})
        if len(names) >= 2 and self.benchmark_sample:
            for b in tqdm(names, desc="panel: leave-benchmark-out", leave=False, disable=not show_bars(len(names) >= 8)):
                ids = np.flatnonzero(snap.benchmarks == b)
                ids = np.sort(rng.choice(ids, size=min(self.benchmark_sample, len(ids)), replace=False))
                p, c = snap.estimates(snap.vectors[ids], range(len(panel.reference)), self.knn,
                                      hide_benchmarks=snap.benchmarks[ids])
                views.append((ids, p, c))
        eta, prior, close, y = [], [], [], []
        for j, m in enumerate(panel.reference):
            fit = self.model_fit(m, history)
            for ids, p, c in views:
                yj = snap.scores[ids, j]
                has = ~np.isnan(yj)
                e = design(panel.factors(p), logit(p[:, j])) @ fit.coef
                eta.append(e[has]), y.append(yj[has]), close.append(c[has])
                prior.append(np.full(int(has.sum()), fit.level))
        return fit_shrinkage(np.concatenate(eta), np.concatenate(prior), np.concatenate(close), np.concatenate(y))

    def model_fit(self, model: str, history: History) -> ModelFit:
        """The model's regression on the panel factors (cached; see the module doc)."""
        with self._lock:
            panel = self._panel
            if panel is None:
                raise EstimatorError("the panel is not fitted: call panel(history) first")
            n_out = history.n_outcomes(model)
            fit = self._fits.get(model)
            if fit is not None and not _moved((fit.n_outcomes,), (n_out,), self.refit_share):
                return fit
            arr = history.model_arrays(model)
            rng = np.random.default_rng([self.seed, n_out])
            pick = np.sort(rng.choice(len(arr.ids), size=min(self.fit_sample, len(arr.ids)), replace=False))
            ids, y = arr.ids[pick].astype(np.int64), arr.scores[pick].astype(np.float64)
            x = self._loo_design(history, panel, model, ids)
            coef = map_logistic(x, y, np.r_[_prior_mean(y, panel.loading_mean), 0.0],
                                np.r_[INTERCEPT_PRECISION, 1.0 / panel.loading_var, OWN_PRECISION])
            level = self._level(history, panel, model, coef)
            fit = ModelFit(coef, level, n_out)
            self._fits[model] = fit
            return fit

    def _loo_design(self, history: History, panel: Panel, model: str, ids: np.ndarray) -> np.ndarray:
        """Design rows for history questions ``ids``, each hidden from its own anchors."""
        vecs = history.vectors(ids)
        ref = self.knn.predict([""] * len(ids), vecs, history.anchors(vecs, panel.reference, self.k, exclude_ids=ids), history)
        own = self.knn.predict([""] * len(ids), vecs, history.anchors(vecs, [model], self.k, exclude_ids=ids), history)
        return design(panel.factors(ref.p_correct), logit(own.p_correct[:, 0]))

    def _level(self, history: History, panel: Panel, model: str, coef: np.ndarray) -> float:
        """The model's mean estimate over a sample of the history, as a logit (its accuracy there)."""
        rng = np.random.default_rng(self.seed + 1)
        ids = np.sort(rng.choice(len(history), size=min(500, len(history)), replace=False)).astype(np.int64)
        p = sigmoid(self._loo_design(history, panel, model, ids) @ coef).mean()
        return float(logit(np.array([p]))[0])


def design(z: np.ndarray, own_logit: np.ndarray | None = None) -> np.ndarray:
    """Regression rows: intercept, factor scores and (when given) the own-kNN logit."""
    cols = [np.ones((len(z), 1)), z]
    if own_logit is not None:
        cols.append(np.asarray(own_logit, np.float64).reshape(-1, 1))
    return np.hstack(cols)


def map_logistic(x: np.ndarray, y: np.ndarray, mean: np.ndarray, precision: np.ndarray, iters: int = 50) -> np.ndarray:
    """MAP logistic regression with a Gaussian prior (``mean``, diagonal ``precision``), by damped
    Newton steps; ``y`` may be soft labels in [0, 1]."""
    w = np.asarray(mean, np.float64).copy()
    for _ in range(iters):
        p = sigmoid(x @ w)
        g = x.T @ (p - y) + precision * (w - mean)
        h = (x.T * (p * (1 - p))) @ x + np.diag(precision)
        step = np.linalg.solve(h, g)
        norm = np.linalg.norm(step)
        if norm > 5.0:
            step *= 5.0 / norm
        w -= step
        if norm < 1e-7:
            break
    return w


def _prior_mean(y: np.ndarray, loadings: np.ndarray) -> np.ndarray:
    """Prior mean of (intercept, loadings): the outcomes' mean as a logit, then the loadings."""
    return np.r_[logit(np.array([y.mean() if len(y) else 0.5]))[0], loadings]


def _moved(old: tuple[int, ...], new: tuple[int, ...], share: float) -> bool:
    """Whether any count changed by more than ``share`` of its old value (at least by one)."""
    return any(abs(n - o) >= max(1.0, share * o) for o, n in zip(old, new))
