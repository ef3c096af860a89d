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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class ItemBank:
    """Question parameters from the reference models' outcomes (see the module doc).

    Arrays are per history question (``n_questions``): ``difficulty`` (``d_i``), ``variance`` (its
    posterior variance), ``bench`` (an index into ``benchmarks``) and ``in_pool`` (the question has
    reference outcomes: the level is the mean over these). Per benchmark: ``benchmark_effect``
    (``mu_b``, the reference models' mean ability there less their overall ability). ``abilities``:
    the reference models' overall abilities ``a_k``; ``specialist_sd``: ``tau``.
    """

    difficulty: np.ndarray
    variance: np.ndarray
    bench: np.ndarray
    in_pool: np.ndarray
    benchmarks: tuple[str, ...]
    benchmark_effect: np.ndarray
    abilities: np.ndarray
    specialist_sd: float
    reference: tuple[str, ...] = ()

    @property
    def kappa(self) -> np.ndarray:
        """Per question: how much a difficulty's uncertainty flattens the chance curve (probit rule)."""
        return 1.0 / np.sqrt(1.0 + math.pi * self.variance / 8.0)

    @property
    def pool_share(self) -> np.ndarray:
        """Per benchmark: its share of the pool (the weights of the overall level)."""
        counts = np.bincount(self.bench[self.in_pool], minlength=len(self.benchmarks)).astype(np.float64)
        return counts / max(counts.sum(), 1.0)


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


def fit_item_bank(
    scores: np.ndarray,
    benchmarks: Sequence[str | None],
    iters: int = 60,
    reference: Sequence[str] = (),
) -> ItemBank:
    """The item bank of a (n_questions, n_reference_models) score matrix (NaN = no outcome; scores
    in [0, 1]) and each question's benchmark: see the module doc. Alternating damped Newton steps on
    difficulties and abilities, with the difficulty spread per benchmark refitted as it goes."""
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
    theta = np.zeros((n_b, n_k))
    for b in range(n_b):  # start at each model's mean score per benchmark
        rows = bench == b
        cnt = known[rows].sum(0)
        mean = np.where(cnt > 0, yk[rows].sum(0) / np.maximum(cnt, 1), 0.5)
        theta[b] = np.log(np.clip(mean, 0.02, 0.98) / (1 - np.clip(mean, 0.02, 0.98)))
    d = np.zeros(len(y))
    s2 = np.ones(n_b)
    info = np.zeros(len(y))
    for it in range(iters):
        p = _sigmoid(theta[bench] - d[:, None])
        w = np.where(known, p * (1 - p), 0.0)
        r = np.where(known, yk - p, 0.0)
        info = w.sum(1)
        prec = 1.0 / s2[bench]
        d += np.clip((-r.sum(1) - d * prec) / (info + prec), -2.0, 2.0)
        d = np.clip(d, -MAX_LOGIT, MAX_LOGIT)
        p = _sigmoid(theta[bench] - d[:, None])
        w = np.where(known, p * (1 - p), 0.0)
        r = np.where(known, yk - p, 0.0)
        g = np.zeros((n_b, n_k))
        h = np.zeros((n_b, n_k))
        np.add.at(g, bench, r)
        np.add.at(h, bench, w)
        theta = np.clip(theta + np.clip((g - 1e-2 * theta) / (h + 1e-2), -2.0, 2.0), -MAX_LOGIT, MAX_LOGIT)
        if it % 5 == 4:  # empirical Bayes: the difficulty spread per benchmark (EM step)
            var = 1.0 / (info + 1.0 / s2[bench])
            for b in range(n_b):
                rows = (bench == b) & in_pool
                if rows.any():
                    s2[b] = float(np.clip(np.mean(d[rows] ** 2 + var[rows]), 0.05, 25.0))
    variance = 1.0 / (info + 1.0 / s2[bench])
    variance = np.where(in_pool, variance, s2[bench])
    # abilities: model + benchmark effects (benchmarks weighed by their pool share) and the rest
    share = np.bincount(bench[in_pool], minlength=n_b).astype(np.float64)
    share /= max(share.sum(), 1.0)
    has = np.zeros((n_b, n_k), bool)
    for b in range(n_b):
        has[b] = known[bench == b].any(0)
    col_w = np.where(has, share[:, None], 0.0)
    ability = (col_w * theta).sum(0) / np.maximum(col_w.sum(0), 1e-12)
    resid = np.where(has, theta - ability[None, :], np.nan)
    with np.errstate(invalid="ignore"):
        effect = np.nan_to_num(np.nanmean(resid, 1))
    inter = resid - effect[:, None]
    dof = max((np.isfinite(inter).sum() - n_b - n_k + 1), 1)
    tau = float(np.sqrt(np.nansum(inter ** 2) / dof)) if n_k > 1 else 1.0
    return ItemBank(d, variance, bench, in_pool, names, effect, ability, max(tau, MIN_SPECIALIST_SD), tuple(reference))


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
    kappa = bank.kappa
    ka, ba, da = kappa[ids], bank.bench[ids], bank.difficulty[ids]
    x = np.zeros((len(ids), n_b + 1))  # d eta / d phi per anchor
    x[:, 0] = ka
    x[np.arange(len(ids)), 1 + ba] = ka
    hess = np.diag(prior_prec)
    for _ in range(iters):
        eta = ka * (phi[0] + bank.benchmark_effect[ba] + phi[1 + ba] - da)
        p = _sigmoid(eta)
        grad = x.T @ (y - p) - prior_prec * (phi - prior_mean)
        hess = (x.T * (p * (1 - p))) @ x + np.diag(prior_prec)
        step = np.linalg.solve(hess, grad)
        norm = float(np.linalg.norm(step))
        if norm > 2.0:
            step *= 2.0 / norm
        phi = phi + step
        if norm < 1e-8:
            break
    cov = np.linalg.inv(hess)
    pool = np.flatnonzero(bank.in_pool)
    kb, bb, db = kappa[pool], bank.bench[pool], bank.difficulty[pool]
    pp = _sigmoid(kb * (phi[0] + bank.benchmark_effect[bb] + phi[1 + bb] - db))
    dp = pp * (1 - pp) * kb
    # over-dispersion of the outcomes against the fit (>= 1): widens the interval for a poor fit
    if len(ids) >= 5:
        pa = _sigmoid(ka * (phi[0] + bank.benchmark_effect[ba] + phi[1 + ba] - da))
        dispersion = max(1.0, float(np.sum((y - pa) ** 2) / max(np.sum(pa * (1 - pa)) * (len(ids) - 1) / len(ids), 1e-9)))
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
        lo, hi = _logit(lev_c) - half, _logit(lev_c) + half
        return se, float(_sigmoid(np.array(lo))), float(_sigmoid(np.array(hi)))

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


# ---------------------------------------------------------------- on a History
def reference_models(history: History, share: float = REFERENCE_SHARE) -> list[str]:
    """Models whose outcomes cover at least ``share`` of the history's questions (at least 20)."""
    n = max(len(history), 1)
    return [m for m in history.models if history.n_outcomes(m) >= max(share * n, 20)]


def history_item_bank(history: History, reference: Sequence[str] | None = None) -> ItemBank:
    """The item bank of ``history`` from its reference models (default `reference_models`)."""
    ref = list(reference) if reference is not None else reference_models(history)
    if not ref:
        raise EstimatorError("the history has no reference model to read question difficulty from")
    scores = np.full((len(history), len(ref)), np.nan)
    for j, m in enumerate(ref):
        arr = history.model_arrays(m)
        scores[arr.ids, j] = arr.scores
    return fit_item_bank(scores, history.benchmarks, reference=ref)


def mean_level(y: np.ndarray, z: float = Z_95) -> LevelEstimate:
    """A reference model's level: the plain mean of its outcomes, with a normal interval."""
    n = len(y)
    mean = float(y.mean()) if n else float("nan")
    se = float(y.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return LevelEstimate(mean, max(0.0, mean - z * se), min(1.0, mean + z * se), se, n, mean, "mean")


_CACHE: weakref.WeakKeyDictionary[History, tuple[tuple, dict[str, LevelEstimate]]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def _state(history: History) -> tuple:
    return (len(history), tuple((m, history.n_outcomes(m)) for m in history.models))


def model_levels(history: History) -> dict[str, LevelEstimate]:
    """Every model's level on ``history`` (see the module doc), cached until the history's questions
    or outcome counts change. Models other than the reference ones are corrected for their questions;
    with fewer than two reference models every level is the plain mean."""
    state = _state(history)
    with _CACHE_LOCK:
        hit = _CACHE.get(history)
        if hit is not None and hit[0] == state:
            return hit[1]
    ref = reference_models(history)
    out: dict[str, LevelEstimate] = {}
    bank = history_item_bank(history, ref) if len(ref) >= 2 else None
    for m in history.models:
        arr = history.model_arrays(m)
        y = np.asarray(arr.scores, dtype=np.float64)
        if bank is None or m in ref:
            out[m] = mean_level(y)
        else:
            out[m] = estimate_level(bank, np.asarray(arr.ids, dtype=np.int64), y)
    with _CACHE_LOCK:
        _CACHE[history] = (state, out)
    return out


def model_level(history: History, model: str) -> float:
    """One model's level on ``history`` (`model_levels`); raises `UnknownModelError` for a model
    without outcomes."""
    history.model_arrays(model)  # names an unknown model clearly
    return model_levels(history)[model].level
