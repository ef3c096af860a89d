"""A model's level (accuracy on the history) from a few outcomes, corrected for which questions they are.

The plain mean of a new model's anchor outcomes is only as good as the anchors are typical: a draw
that happens to hold easy questions rates the model too high. The history knows how hard each
question is (how the known models did on it), so the level is read item-response style:

1. **Item bank** (`fit_item_bank`): a Rasch model on the known ("reference") models' outcomes,
   ``P(model k solves question i) = sigmoid(theta[benchmark(i), k] - d_i)``, with one ability per
   model and benchmark and a difficulty ``d_i`` per question drawn from ``N(0, s_b^2)`` (``s_b``
   fitted per benchmark, empirical Bayes). A question's difficulty keeps its posterior variance
   ``v_i``; the abilities are split into model + benchmark effects, and the spread ``tau`` of what
   is left (how much a model is a specialist) is the prior of a new model's per-benchmark ability.
2. **A new model** (`estimate_level`): its ability on benchmark b is ``a + mu_b + delta_b`` with
   ``delta_b ~ N(0, tau^2)`` and a weak prior on ``a``; fitted (MAP, Newton) on its outcomes, its
   chance on every pool question is ``sigmoid(kappa_i (ability - d_i))`` (``kappa_i`` folds in the
   difficulty's uncertainty), and its level is the mean over the pool, per benchmark and overall
   (benchmarks in their pool shares). An easy draw raises the fitted difficulty-adjusted ability
   less than it raises the plain mean, so the level is not tilted by the draw.
3. **Interval**: the posterior (Laplace) variance of the level by the delta method, on the logit
   scale, inflated by the outcomes' over-dispersion against the fit (quasi-likelihood) so that a
   model the Rasch form describes badly gets a wider interval, not a false one.

Everything works on arrays (pure functions); `model_levels` applies it to a `History` and caches
the result per history state (questions and outcome counts). A reference model's level is the
plain mean of its own outcomes (they cover the history).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scope_shared.errors import EstimatorError
from scope_shared.estimators.logistic import logit, sigmoid
from scope_shared.history import History

Z_95 = 1.959963984540054
#: a model is a reference model (its outcomes define the item bank) above this share of the history
REFERENCE_SHARE = 0.5
#: the prior sd of a new model's overall ability is this multiple of the reference models' spread
ABILITY_PRIOR_SCALE = 2.0
#: difficulties and abilities stay within +-this (logits): 0 % or 100 % cells stay finite
MAX_LOGIT = 8.0
#: the least prior spread (logits) of a new model's per-benchmark ability around its overall one: a
#: new model may be a specialist even where the reference models are not
MIN_SPECIALIST_SD = 1.0
NO_BENCHMARK = "(none)"


@dataclass(frozen=True)
class ItemBank:
    """Question parameters from the reference models' outcomes (see the module doc).

    Per history question (``n_questions``): ``bench`` (an index into ``benchmarks``), ``in_pool``
    (the question has reference outcomes: the level is the mean over these) and ``weights``
    (n_questions, G): the posterior of its difficulty over the benchmark's difficulty grid
    ``grid[bench]`` (G nodes). Per benchmark: ``benchmark_effect`` (``mu_b``, the reference models'
    mean ability there less their overall ability). ``abilities``: the reference models' overall
    abilities ``a_k``; ``specialist_sd``: ``tau``.
    """

    weights: np.ndarray
    grid: np.ndarray
    bench: np.ndarray
    in_pool: np.ndarray
    benchmarks: tuple[str, ...]
    benchmark_effect: np.ndarray
    abilities: np.ndarray
    specialist_sd: float
    reference: tuple[str, ...] = ()

    @property
    def difficulty(self) -> np.ndarray:
        """Per question: its posterior mean difficulty (logits)."""
        return (self.weights * self.grid[self.bench]).sum(1)

    @property
    def pool_share(self) -> np.ndarray:
        """Per benchmark: its share of the pool (the weights of the overall level)."""
        counts = np.bincount(self.bench[self.in_pool], minlength=len(self.benchmarks)).astype(np.float64)
        return counts / max(counts.sum(), 1.0)

    def chance(self, ids: np.ndarray, ability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For questions ``ids`` and a model's ability on each one's benchmark (``ability``, one per
        id, without ``mu_b``): its chance of solving each (the difficulty integrated out) and the
        chance's derivative in the ability."""
        eta = (ability + self.benchmark_effect[self.bench[ids]])[:, None] - self.grid[self.bench[ids]]
        q = sigmoid(eta)
        w = self.weights[ids]
        return (w * q).sum(1), (w * q * (1 - q)).sum(1)


@dataclass(frozen=True)
class BenchmarkLevel:
    """A model's estimated accuracy on one benchmark of the pool, with its interval."""

    name: str
    n: int
    level: float
    low: float
    high: float
    naive: float


@dataclass(frozen=True)
class LevelEstimate:
    """A model's estimated accuracy on the history's pool (``level``, interval [``low``, ``high``],
    standard error ``se``), from ``n`` outcomes whose plain mean is ``naive``; ``per_benchmark``
    in pool order; ``method``: ``"irt"`` (corrected for the questions), ``"mean"`` (a reference
    model's own mean) or ``"prior"`` (no outcomes)."""

    level: float
    low: float
    high: float
    se: float
    n: int
    naive: float
    method: str = "irt"
    per_benchmark: tuple[BenchmarkLevel, ...] = field(default_factory=tuple)

    def benchmark(self, name: str | None) -> BenchmarkLevel | None:
        """The row of benchmark ``name`` (None: questions without a benchmark), if it is in the pool."""
        key = name or NO_BENCHMARK
        return next((r for r in self.per_benchmark if r.name == key), None)


def _bench_codes(benchmarks: Sequence[str | None]) -> tuple[tuple[str, ...], np.ndarray]:
    names, codes = np.unique(np.array([b or NO_BENCHMARK for b in benchmarks], dtype=object).astype(str),
                             return_inverse=True)
    return tuple(names.tolist()), codes.astype(np.int64)


#: standard normal nodes of the difficulty grid (times each benchmark's spread)
GRID = np.linspace(-4.0, 4.0, 25)


def fit_item_bank(
    scores: np.ndarray,
    benchmarks: Sequence[str | None],
    iters: int = 20,
    reference: Sequence[str] = (),
) -> ItemBank:
    """The item bank of a (n_questions, n_reference_models) score matrix (NaN = no outcome; scores
    in [0, 1]) and each question's benchmark: see the module doc. Marginal maximum likelihood by EM,
    each question's difficulty integrated over a grid: E-step its posterior given the reference
    outcomes, M-step one Newton step on every ability and the difficulty spread per benchmark."""
    y = np.asarray(scores, dtype=np.float64)
    if y.ndim != 2 or len(benchmarks) != len(y):
        raise EstimatorError("fit_item_bank needs a (questions, models) score matrix and one benchmark per question")
    names, bench = _bench_codes(benchmarks)
    n_b, n_k = len(names), y.shape[1]
    known = np.isfinite(y)
    if n_k == 0 or not known.any():
        raise EstimatorError("the item bank needs reference models with outcomes")
    yk = np.where(known, y, 0.0)
    in_pool = known.any(1)
    # questions of one benchmark with the same reference outcomes share their posterior: fit on the
    # distinct rows, each counted as often as it occurs
    rows_key = np.c_[bench, np.where(known, yk, -1.0)]
    _, first, inverse, count = np.unique(rows_key, axis=0, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    u_bench, u_known, u_y, u_pool = bench[first], known[first], yk[first], in_pool[first]
    cnt_w = count.astype(np.float64)
    theta = np.zeros((n_b, n_k))
    for b in range(n_b):  # start at each model's mean score per benchmark
        rows = bench == b
        cnt = known[rows].sum(0)
        mean = np.clip(np.where(cnt > 0, yk[rows].sum(0) / np.maximum(cnt, 1), 0.5), 0.02, 0.98)
        theta[b] = np.log(mean / (1 - mean))
    spread = np.full(n_b, 1.5)
    prior = np.exp(-0.5 * GRID**2)
    prior /= prior.sum()
    weights = np.broadcast_to(prior, (len(first), len(GRID))).copy()
    for it in range(iters):
        grid = spread[:, None] * GRID[None, :]  # (B, G)
        # E-step: log-likelihood of each question's reference outcomes at each grid difficulty
        eta = theta[u_bench][:, None, :] - grid[u_bench][:, :, None]  # (n, G, K)
        ll = np.where(u_known[:, None, :], u_y[:, None, :] * eta - np.logaddexp(0.0, eta), 0.0).sum(2)
        ll += np.log(prior)[None, :]
        ll -= ll.max(1, keepdims=True)
        weights = np.exp(ll)
        weights /= weights.sum(1, keepdims=True)
        # M-step: abilities (one Newton step on the expected log-likelihood), spreads (moment)
        q = sigmoid(eta)
        r = np.where(u_known, u_y - (weights[:, :, None] * q).sum(1), 0.0) * cnt_w[:, None]
        h = np.where(u_known, (weights[:, :, None] * q * (1 - q)).sum(1), 0.0) * cnt_w[:, None]
        g_b, h_b = np.zeros((n_b, n_k)), np.zeros((n_b, n_k))
        np.add.at(g_b, u_bench, r)
        np.add.at(h_b, u_bench, h)
        step = np.clip((g_b - 1e-2 * theta) / (h_b + 1e-2), -2.0, 2.0)
        theta = np.clip(theta + step, -MAX_LOGIT, MAX_LOGIT)
        old = spread.copy()
        for b in range(n_b):
            rows = (u_bench == b) & u_pool
            if rows.any():
                second = float(cnt_w[rows] @ (weights[rows] * grid[b] ** 2).sum(1) / cnt_w[rows].sum())
                spread[b] = float(np.clip(math.sqrt(second), 0.2, MAX_LOGIT / 2))
        if np.abs(step).max() < 1e-2 and np.abs(spread - old).max() < 1e-2:
            break
    weights = weights[inverse]
    grid = spread[:, None] * GRID[None, :]
    weights[~in_pool] = prior
    # abilities: model + benchmark effects (benchmarks weighed by their pool share) and the rest
    share = np.bincount(bench[in_pool], minlength=n_b).astype(np.float64)
    share /= max(share.sum(), 1.0)
    has = np.zeros((n_b, n_k), bool)
    for b in range(n_b):
        has[b] = known[bench == b].any(0)
    col_w = np.where(has, share[:, None], 0.0)
    ability = (col_w * theta).sum(0) / np.maximum(col_w.sum(0), 1e-12)
    resid = np.where(has, theta - ability[None, :], np.nan)
    counted = np.isfinite(resid).sum(1)  # a benchmark no model answered has no effect (0)
    effect = np.nansum(resid, 1) / np.maximum(counted, 1)
    inter = resid - effect[:, None]
    dof = max((np.isfinite(inter).sum() - n_b - n_k + 1), 1)
    tau = float(np.sqrt(np.nansum(inter ** 2) / dof)) if n_k > 1 else 1.0
    return ItemBank(weights, grid, bench, in_pool, names, effect, ability, max(tau, MIN_SPECIALIST_SD), tuple(reference))


def estimate_level(
    bank: ItemBank,
    question_ids: np.ndarray | Sequence[int],
    outcomes: np.ndarray | Sequence[float],
    z: float = Z_95,
    iters: int = 50,
) -> LevelEstimate:
    """A model's level on the bank's pool from its ``outcomes`` (scores in [0, 1]) on questions
    ``question_ids`` (indices into the bank's arrays): see the module doc."""
    ids = np.asarray(question_ids, dtype=np.int64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    if ids.shape != y.shape:
        raise EstimatorError("estimate_level needs one outcome per question id")
    if len(ids) and (ids.min() < 0 or ids.max() >= len(bank.difficulty)):
        raise EstimatorError("a question id is outside the item bank")
    if not np.all(np.isfinite(y)) or (len(y) and (y.min() < 0 or y.max() > 1)):
        raise EstimatorError("outcomes must be scores in [0, 1]")
    n_b = len(bank.benchmarks)
    a0 = float(bank.abilities.mean())
    sa = ABILITY_PRIOR_SCALE * max(float(bank.abilities.std()), 1.0)
    tau = bank.specialist_sd
    prior_prec = np.r_[1.0 / sa**2, np.full(n_b, 1.0 / tau**2)]
    prior_mean = np.r_[a0, np.zeros(n_b)]
    phi = prior_mean.copy()
    ba = bank.bench[ids]
    x = np.zeros((len(ids), n_b + 1))  # which parameters each anchor's ability sums
    x[:, 0] = 1.0
    x[np.arange(len(ids)), 1 + ba] = 1.0
    hess = np.diag(prior_prec)
    pa = np.zeros(len(ids))
    for _ in range(iters):  # Fisher scoring on the posterior
        pa, slope = bank.chance(ids, phi[0] + phi[1 + ba])
        pa = np.clip(pa, 1e-9, 1 - 1e-9)
        grad = x.T @ ((y - pa) / (pa * (1 - pa)) * slope) - prior_prec * (phi - prior_mean)
        hess = (x.T * (slope**2 / (pa * (1 - pa)))) @ x + np.diag(prior_prec)
        step = np.linalg.solve(hess, grad)
        norm = float(np.linalg.norm(step))
        if norm > 2.0:
            step *= 2.0 / norm
        phi = phi + step
        if norm < 1e-8:
            break
    if len(ids):
        pa, _ = bank.chance(ids, phi[0] + phi[1 + ba])
    cov = np.linalg.inv(hess)
    pool = np.flatnonzero(bank.in_pool)
    bb = bank.bench[pool]
    pp, dp = bank.chance(pool, phi[0] + phi[1 + bb])
    # over-dispersion of the outcomes against the fit (>= 1): widens the interval for a poor fit
    if len(ids) >= 5:
        expected = max(float(np.sum(pa * (1 - pa))) * (len(ids) - 1) / len(ids), 1e-9)
        dispersion = max(1.0, float(np.sum((y - pa) ** 2)) / expected)
    else:
        dispersion = 1.0
    share = bank.pool_share
    level_b = np.zeros(n_b)
    grad_b = np.zeros((n_b, n_b + 1))
    for b in range(n_b):
        rows = bb == b
        if not rows.any():
            continue
        level_b[b] = pp[rows].mean()
        grad_b[b, 0] = grad_b[b, 1 + b] = dp[rows].mean()
    level = float(share @ level_b)
    g = share @ grad_b

    def interval(lev: float, grad: np.ndarray) -> tuple[float, float, float]:
        se = math.sqrt(max(float(grad @ cov @ grad) * dispersion, 0.0))
        lev_c = min(max(lev, 1e-6), 1 - 1e-6)
        half = z * se / (lev_c * (1 - lev_c))  # delta method on the logit scale
        lo, hi = float(logit(lev_c)) - half, float(logit(lev_c)) + half
        return se, float(sigmoid(np.array(lo))), float(sigmoid(np.array(hi)))

    se, low, high = interval(level, g)
    rows = []
    for b in np.argsort(-share, kind="stable"):
        if share[b] <= 0:
            continue
        mine = ba == b
        _, lo_b, hi_b = interval(float(level_b[b]), grad_b[b])
        rows.append(BenchmarkLevel(bank.benchmarks[b], int(mine.sum()), float(level_b[b]), lo_b, hi_b,
                                   float(y[mine].mean()) if mine.any() else float("nan")))
    naive = float(y.mean()) if len(y) else float("nan")
    return LevelEstimate(level, low, high, se, len(ids), naive, "irt" if len(ids) else "prior", tuple(rows))


# ---------------------------------------------------------------- on arrays
def mean_level(y: np.ndarray, z: float = Z_95) -> LevelEstimate:
    """A reference model's level: the plain mean of its outcomes, with a normal interval."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    mean = float(y.mean()) if n else float("nan")
    se = float(y.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    low, high = (max(0.0, mean - z * se), min(1.0, mean + z * se)) if n > 1 else (0.0, 1.0)
    return LevelEstimate(mean, low, high, se, n, mean, "mean")


def reference_columns(counts: Sequence[int], n_questions: int, share: float = REFERENCE_SHARE) -> list[int]:
    """Which models (by their outcome ``counts``) are reference models: outcomes on at least
    ``share`` of the ``n_questions`` (and at least 20)."""
    return [j for j, c in enumerate(counts) if c >= max(share * n_questions, 20)]


def score_matrix_levels(scores: np.ndarray, benchmarks: Sequence[str | None],
                        share: float = REFERENCE_SHARE) -> list[LevelEstimate]:
    """Every column's level on a (n_questions, n_models) score matrix (NaN = no outcome): the
    reference columns (`reference_columns`) by their plain mean, the others corrected for their
    questions by an item bank of the reference columns. With fewer than two reference columns every
    level is the plain mean."""
    y = np.asarray(scores, dtype=np.float64)
    known = np.isfinite(y)
    ref = reference_columns(known.sum(0).tolist(), len(y), share)
    bank = fit_item_bank(y[:, ref], benchmarks) if len(ref) >= 2 else None
    out = []
    for j in range(y.shape[1]):
        ids = np.flatnonzero(known[:, j])
        out.append(mean_level(y[ids, j]) if bank is None or j in ref else estimate_level(bank, ids, y[ids, j]))
    return out


# ---------------------------------------------------------------- on a History
def reference_models(history: History, share: float = REFERENCE_SHARE) -> list[str]:
    """Models whose outcomes cover at least ``share`` of the history's questions (at least 20)."""
    models = history.models
    return [models[j] for j in reference_columns([history.n_outcomes(m) for m in models], len(history), share)]


def history_item_bank(history: History, reference: Sequence[str] | None = None) -> ItemBank:
    """The item bank of ``history`` from its reference models (default `reference_models`)."""
    ref = list(reference) if reference is not None else reference_models(history)
    if not ref:
        raise EstimatorError("the history has no reference model to read question difficulty from")
    scores = history.score_matrix(ref).astype(np.float64)
    return fit_item_bank(scores, history.benchmarks[: len(scores)], reference=ref)  # questions added since: later


def _moved(old: int, new: int, share: float) -> bool:
    return abs(new - old) >= max(1.0, share * old)


class _LevelCache:
    """One history's item bank and levels, refitted only when its counts move by ``REFIT_SHARE``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bank: ItemBank | None = None  # fitted when first needed
        self.bank_sizes: tuple[int, ...] = ()
        self.reference: tuple[str, ...] = ()
        self.levels: dict[str, tuple[int, LevelEstimate]] = {}


#: the item bank is refitted when the history's length or a reference model's outcome count has
#: moved by this share since the fit; a model's level when its own outcome count has
REFIT_SHARE = 0.05
_CACHES: weakref.WeakKeyDictionary[History, _LevelCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def model_levels(history: History, models: Sequence[str] | None = None) -> dict[str, LevelEstimate]:
    """The levels of ``models`` (default all) on ``history``: reference models (`reference_models`)
    by their plain mean, the others corrected for their questions by the history's item bank (with
    fewer than two reference models, every level is the plain mean). Cached per history: the item
    bank is refitted when the history's length or a reference model's count has moved by
    `REFIT_SHARE`, a model's level when its own count has; outcomes on questions added after the
    item bank's fit are left out of its level until the next refit."""
    cache = _open_cache(history)
    wanted = list(models) if models is not None else history.models
    with cache.lock:
        _drop_if_stale(history, cache)
        ref = cache.reference
        out: dict[str, LevelEstimate] = {}
        for m in wanted:
            n = history.n_outcomes(m)  # UnknownModelError names a model without outcomes
            hit = cache.levels.get(m)
            if hit is not None and not _moved(hit[0], n, REFIT_SHARE):
                out[m] = hit[1]
                continue
            arr = history.model_arrays(m)
            ids, y = np.asarray(arr.ids, dtype=np.int64), np.asarray(arr.scores, dtype=np.float64)
            est = mean_level(y) if len(ref) < 2 or m in ref else _corrected_level(history, cache, ids, y)
            cache.levels[m] = (n, est)
            out[m] = est
        return out


def _open_cache(history: History) -> _LevelCache:
    with _CACHES_LOCK:
        cache = _CACHES.get(history)
        if cache is None:
            cache = _CACHES[history] = _LevelCache()
        return cache


def _drop_if_stale(history: History, cache: _LevelCache) -> None:
    """Forget the cache's item bank and levels when the reference models changed or the history's
    length or a reference model's count moved by `REFIT_SHARE` (the caller holds ``cache.lock``)."""
    ref = tuple(reference_models(history))
    sizes = (len(history), *(history.n_outcomes(m) for m in ref))
    stale = (ref != cache.reference or len(sizes) != len(cache.bank_sizes)
             or any(_moved(o, n, REFIT_SHARE) for o, n in zip(cache.bank_sizes, sizes)))
    if stale:
        cache.bank, cache.bank_sizes, cache.reference, cache.levels = None, sizes, ref, {}


def _corrected_level(history: History, cache: _LevelCache, ids: np.ndarray, y: np.ndarray) -> LevelEstimate:
    """Outcomes ``y`` on history questions ``ids`` corrected by the cache's item bank (fitted on first
    need; the caller holds ``cache.lock`` and has checked that it is current)."""
    if cache.bank is None:
        cache.bank = history_item_bank(history, cache.reference)
    keep = ids < len(cache.bank.bench)
    return estimate_level(cache.bank, ids[keep], y[keep])


def outcomes_level(history: History, ids: np.ndarray, y: np.ndarray) -> LevelEstimate:
    """The level of a model that scored ``y`` on history questions ``ids``, corrected for which
    questions those are as `model_levels` corrects a model with few outcomes: what a known model would
    be estimated at had it answered only these (the plain mean with fewer than two reference models)."""
    ids, y = np.asarray(ids, dtype=np.int64), np.asarray(y, dtype=np.float64)
    cache = _open_cache(history)
    with cache.lock:
        _drop_if_stale(history, cache)
        return mean_level(y) if len(cache.reference) < 2 else _corrected_level(history, cache, ids, y)


def model_level(history: History, model: str) -> float:
    """One model's level on ``history`` (`model_levels`)."""
    return model_levels(history, [model])[model].level


def logit_shift(eta: np.ndarray, level: float, iters: int = 30) -> float:
    """The shift ``s`` with ``mean(sigmoid(eta + s)) == level``: what moves an estimator's logits
    ``eta`` over a sample of the history onto a model's level (Newton steps)."""
    eta = np.asarray(eta, dtype=np.float64)
    level = min(max(float(level), 1e-4), 1 - 1e-4)
    s = 0.0
    for _ in range(iters):
        p = sigmoid(eta + s)
        gap = float(p.mean()) - level
        slope = float((p * (1 - p)).mean())
        if abs(gap) < 1e-7 or slope <= 0:
            break
        s -= float(np.clip(gap / slope, -2.0, 2.0))
    return s
