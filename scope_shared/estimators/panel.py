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
   the model's accuracy, with less variance than the plain mean of its anchors. For a model with
   few outcomes the intercept is then moved so that this mean is its level corrected for which
   questions it answered (`levels`): anchors that happened to be easy do not tilt it.
3. Far from the history the estimate shrinks toward the model's level (`shrinkage`), by an amount
   fitted on leave-one-out and leave-benchmark-out views of the history.
4. The estimate is then mixed with the model's plain kNN estimate (`KNNEstimator`, on its level),
   weight ``knn_weight``: the factors say what the known models share, the model's own neighbours
   what is its own on this kind of question. On the validation parts the mix routed a little better
   than the pure panel (``benchmarks/knn_mix.py``; ``docs/design.md``, "Estimators").

It sees models only through their outcomes, so models added later are served without retraining.
Fitting reads one block of similarities between a seeded pool of history questions and the whole
history (`panel_features.NeighbourLists`), so a fit takes about a second on the bundled pack. Fits
live in the history (``history.fit_cache``, shared by every router and estimator of the same
settings over it): the panel is refitted when the history or the reference models' outcomes grow by
more than ``refit_share``, a model's fit when its outcome count moves by that share (at least one
outcome). `prepare` fits ahead of routing (`Router` calls it when built and when a model or an
outcome joins), so a routed call does not wait for a fit.
Output lengths are the kNN estimator's. With fewer than two reference models it is the kNN estimator.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scope_shared.errors import EstimatorError
from scope_shared.estimators import logistic
from scope_shared.estimators.base import Estimator, HistoryEstimates, RawEstimates
from scope_shared.estimators.knn import KNNEstimator, on_level
from scope_shared.estimators.levels import LevelEstimate, logit_shift, model_levels, outcomes_level
from scope_shared.estimators.panel_features import (
    LIST_FACTOR,
    NeighbourLists,
    benchmark_codes,
    benchmark_shares,
    hide_benchmarks,
    logit,
    near_questions,
    own_estimates,
    score_matrix,
    similarities,
)
from scope_shared.estimators.logistic import sigmoid
from scope_shared.estimators.shrinkage import Shrinkage, fit_shrinkage
from scope_shared.history import Anchors, History

#: prior precision of the intercept (practically free) and of the own-kNN coefficient
INTERCEPT_PRECISION = 1e-4
OWN_PRECISION = 1.0
#: bounds on the prior variance of a model's skill on a benchmark (beyond what the factors say); within
#: them it is the spread of the reference models' skills on that benchmark
MIN_SKILL_VAR, MAX_SKILL_VAR = 1.0, 4.0
#: smallest prior variance of a factor loading (the reference models may agree too well)
MIN_LOADING_VAR = 0.05
#: a model answering at least this share of the history is fitted on the pool's neighbour lists
DENSE_SHARE = 0.5
#: the plain kNN estimate's share in the mix (step 4 of the module doc), chosen on the validation parts
KNN_WEIGHT = 0.25


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
    benchmarks: tuple[str, ...] = ()  # the history's benchmarks (a skill on each) when there are two or more
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # each question's benchmark code
    skill_var: np.ndarray = field(default_factory=lambda: np.zeros(0))  # prior variance of each benchmark skill

    def shares(self, neighbour_ids: np.ndarray) -> np.ndarray:
        """Which benchmarks questions are like (from their nearest history questions); (n, 0) without."""
        if not self.benchmarks:
            return np.zeros((len(neighbour_ids), 0))
        return benchmark_shares(neighbour_ids, self.codes, len(self.benchmarks))

    def factors(self, reference_p: np.ndarray) -> np.ndarray:
        return (logit(reference_p) - self.centre) @ self.basis


@dataclass(frozen=True)
class ModelFit:
    """One model's regression on the factors: ``coef`` = (b, a..., c), its level as a logit."""

    coef: np.ndarray
    level: float
    n_outcomes: int


@dataclass
class PanelState:
    """One history's fits for one estimator setting (kept in ``history.fit_cache``): the panel, the
    pool of history questions it was fitted on (leave-one-out neighbour lists and the reference
    models' estimates there, also leave-benchmark-out), and each model's fit."""

    panel: Panel
    pool: NeighbourLists
    ref_p: np.ndarray  # (P, R)
    fits: dict[str, ModelFit] = field(default_factory=dict)
    fitted: int = 0  # model fits made (for tests and diagnostics)


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
        fit_sample: int = 1500,
        benchmark_sample: int = 150,
        refit_share: float = 0.05,
        shrink: bool = True,
        benchmark_skills: bool = False,
        knn_weight: float = KNN_WEIGHT,
        seed: int = 0,
    ) -> None:
        if not (isinstance(factors, int) and factors > 0 and 0 < min_share <= 1 and fit_sample >= 50
                and benchmark_sample >= 0 and refit_share >= 0 and 0 <= knn_weight <= 1):
            raise EstimatorError(
                "PanelEstimator needs factors > 0, 0 < min_share <= 1, fit_sample >= 50, benchmark_sample >= 0, "
                f"refit_share >= 0 and 0 <= knn_weight <= 1; got factors={factors!r}, min_share={min_share!r}, "
                f"fit_sample={fit_sample!r}, benchmark_sample={benchmark_sample!r}, refit_share={refit_share!r}, "
                f"knn_weight={knn_weight!r}"
            )
        self.knn = KNNEstimator(k, temperature, prior_weight, level_correction=False)  # the level is set below
        self.k = k
        self.n_factors, self.min_share, self.fit_sample = factors, min_share, fit_sample
        self.benchmark_sample, self.refit_share, self.shrink, self.seed = benchmark_sample, refit_share, shrink, seed
        self.benchmark_skills, self.knn_weight = benchmark_skills, float(knn_weight)
        self._lock = threading.RLock()
        self._own_cache: dict = {}  # used only for a history without ``fit_cache``

    def __repr__(self) -> str:
        return (f"PanelEstimator(k={self.k}, factors={self.n_factors}, min_share={self.min_share}, "
                f"shrink={self.shrink}, knn_weight={self.knn_weight:g})")

    # ---------------------------------------------------------------- prediction
    def predict(self, queries: Sequence[str], query_embs: np.ndarray, anchors: Anchors, history: History) -> RawEstimates:
        own = self.knn.predict(queries, query_embs, anchors, history)
        state = self.state(history)
        if state is None or not len(queries):
            return own
        panel = state.panel
        z = panel.factors(self._reference_estimates(queries, query_embs, anchors, own, history, panel))
        own_logit = logit(own.p_correct)
        close, near = near_questions(history, query_embs)
        shares = panel.shares(near)
        eta = np.empty_like(own_logit)
        level = np.empty(len(anchors.models))
        for j, m in enumerate(anchors.models):
            fit = self.model_fit(m, history)
            eta[:, j] = design(z, own_logit[:, j], shares) @ fit.coef
            level[j] = fit.level
        if self.shrink:
            eta = panel.shrinkage.apply(eta, level[None, :], close)
        p = self._mix(sigmoid(eta), own.p_correct, self._knn_offsets(history, anchors.models))
        return RawEstimates(p_correct=p, output_tokens=own.output_tokens, n_anchors=own.n_anchors)

    def _mix(self, panel_p: np.ndarray, own_p: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Step 4 of the module doc: the panel's estimates mixed with the kNN ones (``own_p``, before
        the per-model level ``offsets`` that `KNNEstimator` adds as logits)."""
        if not self.knn_weight:
            return panel_p
        return (1.0 - self.knn_weight) * panel_p + self.knn_weight * on_level(own_p, offsets)

    def _knn_offsets(self, history: History, models: Sequence[str]) -> np.ndarray:
        """`KNNEstimator.level_offsets` of ``models``, looked up only when the kNN part is mixed in."""
        return self.knn.level_offsets(history, models) if self.knn_weight else np.zeros(len(models))

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

    @property
    def cache_key(self) -> tuple:
        """What makes two panel estimators' fits interchangeable (their key in ``history.fit_cache``;
        ``knn_weight`` is not in it: it mixes estimates, the fits are the same)."""
        knn = self.knn
        return ("panel", knn.k, knn.temperature, knn.prior_weight, self.n_factors, self.min_share,
                self.fit_sample, self.benchmark_sample, self.shrink, self.benchmark_skills, self.seed)

    def _cache(self, history: History) -> dict:
        cache = getattr(history, "fit_cache", None)
        return self._own_cache if cache is None else cache

    def state(self, history: History) -> PanelState | None:
        """The history's current fits, the panel refitted when the history or the reference models'
        outcomes moved by more than ``refit_share`` (None without two reference models)."""
        with self._lock:
            ref = tuple(self.reference_models(history))
            if len(ref) < 2:
                return None
            sizes = (len(history), *(history.n_outcomes(m) for m in ref))
            cache = self._cache(history)
            old = cache.get(self.cache_key)
            if old is None or old.panel.reference != ref or _moved(old.panel.sizes, sizes, self.refit_share):
                cache[self.cache_key] = self._fit_panel(history, ref, sizes)
            return cache[self.cache_key]

    def panel(self, history: History) -> Panel | None:
        """The current panel fit (see `state`)."""
        state = self.state(history)
        return None if state is None else state.panel

    def prepare(self, history: History, models: Sequence[str] = ()) -> None:
        """Fit the panel and the given models now, and their kNN level offsets (all cached), so
        routing does not wait for them."""
        if self.state(history) is not None:
            known = [m for m in models if m in history.models]
            for m in known:
                self.model_fit(m, history)
            self._knn_offsets(history, known)

    def _fit_panel(self, history: History, ref: tuple[str, ...], sizes: tuple[int, ...]) -> PanelState:
        rng = np.random.default_rng(self.seed)
        n = len(history)
        vectors = history.embeddings
        pool_ids = np.sort(rng.choice(n, size=min(self.fit_sample, n), replace=False)).astype(np.int64)
        sims = similarities(vectors, pool_ids, vectors[pool_ids])
        size = LIST_FACTOR * self.k
        pool = NeighbourLists.from_sims(sims.copy(), pool_ids, size)
        scores, acc = score_matrix(history, ref)
        ref_p = pool.estimates(scores, acc, self.knn)
        f_s = logit(ref_p)
        centre = f_s.mean(0)
        _, _, vt = np.linalg.svd(f_s - centre, full_matrices=False)
        basis = vt[: min(self.n_factors, len(ref))].T
        z_s = (f_s - centre) @ basis
        names, codes = benchmark_codes(history)
        if len(names) < 2 or not self.benchmark_skills:
            names, codes = (), np.zeros(0, np.int64)
        panel = Panel(ref, centre, basis, np.zeros(basis.shape[1]), np.ones(basis.shape[1]), Shrinkage(), sizes,
                      names, codes)
        shares = panel.shares(pool.nbr)
        loadings, skills = [], []
        f = basis.shape[1]
        for j in range(len(ref)):
            y = scores[pool_ids, j].astype(np.float64)
            has = ~np.isnan(y)
            coef = map_logistic(design(z_s[has], None, shares[has]), y[has],
                                np.r_[_prior_mean(y[has], np.zeros(f)), np.zeros(len(names))],
                                np.r_[INTERCEPT_PRECISION, np.full(f + len(names), 1e-2)])
            loadings.append(coef[1:1 + f]), skills.append(coef[1 + f:])
        lm = np.mean(loadings, 0)
        lv = np.maximum(np.var(loadings, 0), MIN_LOADING_VAR)
        # a skill per benchmark, drawn toward none with the spread the reference models show
        sv = np.clip(np.var(skills, 0), MIN_SKILL_VAR, MAX_SKILL_VAR) if names else np.zeros(0)
        panel = dataclasses.replace(panel, loading_mean=lm, loading_var=lv, skill_var=sv)
        # model fits need the panel; the shrinkage needs the reference models' fits
        state = PanelState(panel, pool, ref_p)
        if self.shrink:
            views = [(pool_ids, ref_p, pool.closeness, shares)]
            lbo = self._benchmark_view(history, pool_ids, sims, size, rng)
            if lbo is not None:
                views.append((lbo.ids, lbo.estimates(scores, acc, self.knn), lbo.closeness, panel.shares(lbo.nbr)))
            shrinkage = self._fit_shrinkage(history, state, scores, views)
            state = PanelState(dataclasses.replace(panel, shrinkage=shrinkage), pool, ref_p, state.fits, state.fitted)
        return state

    def _benchmark_view(self, history: History, pool_ids: np.ndarray, sims: np.ndarray, size: int,
                        rng: np.random.Generator) -> NeighbourLists | None:
        """Leave-benchmark-out lists for up to ``benchmark_sample`` pool questions of each benchmark."""
        benchmarks = list(history.benchmarks)
        width = min(len(benchmarks), sims.shape[1])  # the history may grow (live feedback) while it is fitted
        benchmarks, sims = benchmarks[:width], sims[:, :width]
        names = sorted({b for b in benchmarks if b is not None})
        if len(names) < 2 or not self.benchmark_sample:
            return None
        pool_b = np.array([benchmarks[i] for i in pool_ids], dtype=object)
        rows = []
        for b in names:
            at = np.flatnonzero(pool_b == b)
            rows.append(rng.choice(at, size=min(self.benchmark_sample, len(at)), replace=False))
        rows = np.sort(np.concatenate(rows)).astype(np.int64)
        block = hide_benchmarks(sims[rows], list(pool_b[rows]), benchmarks)
        return NeighbourLists.from_sims(block, pool_ids[rows], size)

    def _fit_shrinkage(self, history: History, state: PanelState, scores: np.ndarray, views: list) -> Shrinkage:
        """Fit the shrinkage on the leave-one-out and leave-benchmark-out views of the pool."""
        panel = state.panel
        eta, prior, close, y = [], [], [], []
        for j, m in enumerate(panel.reference):
            fit = self._fit_model(m, history, state)
            for ids, p, c, sh in views:
                yj = scores[ids, j].astype(np.float64)
                has = ~np.isnan(yj)
                e = design(panel.factors(p), logit(p[:, j]), sh) @ fit.coef
                eta.append(e[has]), y.append(yj[has]), close.append(c[has])
                prior.append(np.full(int(has.sum()), fit.level))
        return fit_shrinkage(np.concatenate(eta), np.concatenate(prior), np.concatenate(close), np.concatenate(y))

    def model_fit(self, model: str, history: History) -> ModelFit:
        """The model's regression on the panel factors (cached in the history; see the module doc)."""
        with self._lock:
            state = self.state(history)
            if state is None:
                raise EstimatorError("no panel: the history needs at least two reference models")
            fit = state.fits.get(model)
            if fit is not None and not _moved((fit.n_outcomes,), (history.n_outcomes(model),), self.refit_share):
                return fit
            return self._fit_model(model, history, state)

    def _fit_model(self, model: str, history: History, state: PanelState) -> ModelFit:
        panel, pool = state.panel, state.pool
        arr = history.model_arrays(model)
        n_out = len(arr.ids)
        acc = float(history.model_stats(model)["accuracy"])
        ids_m, y_m = arr.ids.astype(np.int64), arr.scores.astype(np.float64)
        dense = model in panel.reference or n_out >= DENSE_SHARE * len(history)
        own_pool = self._own_on_pool(model, history, state)
        if dense:  # fitted on the pool questions it answered
            pos = np.searchsorted(ids_m, pool.ids)
            pos = np.clip(pos, 0, max(n_out - 1, 0))
            has = ids_m[pos] == pool.ids if n_out else np.zeros(len(pool.ids), bool)
            x = design(panel.factors(state.ref_p)[has], logit(own_pool[has]), panel.shares(pool.nbr)[has])
            y = y_m[pos[has]]
        else:  # few outcomes: fitted on all of them (a sample), with their own neighbour lists
            x, y = self._sparse_rows(history, state, ids_m, y_m, acc)
        target = model_levels(history, [model])[model] if model not in panel.reference else None
        coef, eta_pool = self._regress(state, x, y, own_pool, target)
        fit = ModelFit(coef, _level_logit(eta_pool), n_out)
        state.fits[model] = fit
        state.fitted += 1
        return fit

    def _sparse_rows(self, history: History, state: PanelState, ids_m: np.ndarray, y_m: np.ndarray,
                     acc: float) -> tuple[np.ndarray, np.ndarray]:
        """Regression rows of a model with few outcomes (``y_m`` on ``ids_m``; a sample of at most
        ``fit_sample``): each question's features with the question itself hidden."""
        panel, n_out = state.panel, len(ids_m)
        rng = np.random.default_rng([self.seed, n_out])
        pick = np.sort(rng.choice(n_out, size=min(self.fit_sample, n_out), replace=False))
        vectors = history.embeddings
        rows = ids_m[pick]
        lists = NeighbourLists.build(vectors, rows, vectors[rows], LIST_FACTOR * self.k)
        scores, ref_acc = score_matrix(history, panel.reference)
        ref_rows = lists.estimates(scores, ref_acc, self.knn)
        own_rows = own_estimates(vectors, rows, vectors[rows], ids_m, y_m, acc, self.knn)
        return design(panel.factors(ref_rows), logit(own_rows), panel.shares(lists.nbr)), y_m[pick]

    def _regress(self, state: PanelState, x: np.ndarray, y: np.ndarray, own_pool: np.ndarray,
                 target: LevelEstimate | None) -> tuple[np.ndarray, np.ndarray]:
        """A model's coefficients on its rows ``x``, ``y`` (under the panel's prior) and its logits on
        the pool, whose mean estimate is its level (its accuracy on the history, by regression). For a
        model with few outcomes, the intercept first moves so that this mean is ``target``, its level
        corrected for which questions it answered (`levels`: anchors that happened to be easy)."""
        panel, pool = state.panel, state.pool
        n_b = len(panel.benchmarks)
        coef = map_logistic(x, y, np.r_[_prior_mean(y, panel.loading_mean), 0.0, np.zeros(n_b)],
                            np.r_[INTERCEPT_PRECISION, 1.0 / panel.loading_var, OWN_PRECISION, 1.0 / panel.skill_var])
        x_pool = design(panel.factors(state.ref_p), logit(own_pool), panel.shares(pool.nbr))
        if target is not None and target.method == "irt":
            coef[0] += logit_shift(x_pool @ coef, target.level)
        return coef, x_pool @ coef

    def onboarded_estimates(self, history: History, model: str, anchor_ids: np.ndarray) -> HistoryEstimates | None:
        """Estimates on the pool (`history_estimates`' questions) of a reference model as if it were
        known only from its outcomes on ``anchor_ids``: fitted as a model with few outcomes, its own
        column hidden from the panel's factors. What a model onboarded on those anchors would get, told
        against what the reference model really did; ``None`` for a model outside the panel or
        without an outcome on the anchors."""
        with self._lock:
            state = self.state(history)
            if state is None or model not in state.panel.reference:
                return None
            j = state.panel.reference.index(model)
            ids = np.unique(np.asarray(anchor_ids, np.int64))
            y = history.score_matrix([model])[ids, 0].astype(np.float64)
            ids, y = ids[~np.isnan(y)], y[~np.isnan(y)]
            if not len(ids):
                return None
            basis = state.panel.basis.copy()
            basis[j] = 0.0  # the factors read the other reference models only
            blind = PanelState(dataclasses.replace(state.panel, basis=basis), state.pool, state.ref_p)
            vectors, pool = history.embeddings, state.pool
            acc = float(y.mean())
            own_pool = own_estimates(vectors, pool.ids, vectors[pool.ids], ids, y, acc, self.knn)
            x, yy = self._sparse_rows(history, blind, ids, y, acc)
            target = outcomes_level(history, ids, y)
            _, eta = self._regress(blind, x, yy, own_pool, target)
            eta = eta[:, None]
            if self.shrink:
                eta = blind.panel.shrinkage.apply(eta, np.array([[_level_logit(eta)]]), pool.closeness)
            # the kNN part on its level as `KNNEstimator.level_offsets` puts it (here over the pool)
            offset = logit_shift(logistic.logit(own_pool), target.level) if target.method == "irt" else 0.0
            return HistoryEstimates(pool.ids, self._mix(sigmoid(eta), own_pool[:, None], np.array([offset])))

    def _own_on_pool(self, model: str, history: History, state: PanelState) -> np.ndarray:
        """The model's own kNN estimate on each pool question, the question itself hidden: a reference
        model's is read off the panel, a model answering much of the history uses the pool's neighbour
        lists, one with few outcomes a product with its own questions."""
        panel, pool = state.panel, state.pool
        if model in panel.reference:
            return state.ref_p[:, panel.reference.index(model)]
        arr = history.model_arrays(model)
        ids_m, y_m = arr.ids.astype(np.int64), arr.scores.astype(np.float64)
        acc = float(history.model_stats(model)["accuracy"])
        if len(ids_m) >= DENSE_SHARE * len(history):
            col = np.full((len(history), 1), np.nan, np.float32)
            col[ids_m, 0] = y_m
            return pool.estimates(col, np.array([acc]), self.knn)[:, 0]
        vectors = history.embeddings
        return own_estimates(vectors, pool.ids, vectors[pool.ids], ids_m, y_m, acc, self.knn)

    def history_estimates(self, history: History, models: Sequence[str]) -> HistoryEstimates | None:
        """Estimates on the panel's pool of history questions, each hidden from its own neighbours as a
        new query would be (None without a panel)."""
        with self._lock:
            state = self.state(history)
            if state is None:
                return None
            panel, pool = state.panel, state.pool
            z, shares = panel.factors(state.ref_p), panel.shares(pool.nbr)
            eta = np.empty((len(pool.ids), len(models)))
            own = np.empty_like(eta)
            level = np.empty(len(models))
            for j, m in enumerate(models):
                fit = self.model_fit(m, history)
                own[:, j] = self._own_on_pool(m, history, state)
                eta[:, j] = design(z, logit(own[:, j]), shares) @ fit.coef
                level[j] = fit.level
            if self.shrink:
                eta = panel.shrinkage.apply(eta, level[None, :], pool.closeness)
            return HistoryEstimates(pool.ids, self._mix(sigmoid(eta), own, self._knn_offsets(history, models)))


def design(z: np.ndarray, own_logit: np.ndarray | None = None, shares: np.ndarray | None = None) -> np.ndarray:
    """Regression rows: intercept, factor scores and (when given) the own-kNN logit and the
    question's benchmark shares."""
    cols = [np.ones((len(z), 1)), z]
    if own_logit is not None:
        cols.append(np.asarray(own_logit, np.float64).reshape(-1, 1))
    if shares is not None:
        cols.append(np.asarray(shares, np.float64).reshape(len(z), -1))
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


def _level_logit(eta: np.ndarray) -> float:
    """A model's level as a logit: its mean estimate over the pool (logits ``eta``)."""
    return float(logit(np.array([sigmoid(eta).mean()]))[0])


def _prior_mean(y: np.ndarray, loadings: np.ndarray) -> np.ndarray:
    """Prior mean of (intercept, loadings): the outcomes' mean as a logit, then the loadings."""
    return np.r_[logit(np.array([y.mean() if len(y) else 0.5]))[0], loadings]


def _moved(old: tuple[int, ...], new: tuple[int, ...], share: float) -> bool:
    """Whether any count changed by more than ``share`` of its old value (at least by one)."""
    return any(abs(n - o) >= max(1.0, share * o) for o, n in zip(old, new))
