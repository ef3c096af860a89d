"""Figures of one accuracy-cost curve against the reference points of its test set.

All figures are pure functions of points (mean accuracy, mean USD cost per query):

- ``auc``: area under the step frontier (best accuracy at mean cost <= c), with cost normalised to
  [0, 1] between the cheapest and the most expensive single model; 0 where the router reaches no
  point (so a router's own overhead costs it area);
- ``aiq``: RouterBench's AIQ, the same area under the non-decreasing convex hull (random mixing of
  two routings reaches any point between them);
- ``cost_saving_at_bsm``: 1 - (cheapest router point with accuracy >= BSM's) / BSM's cost;
- ``cost_share_within_1pt``: (cheapest router point with accuracy >= BSM's - 1 point) / BSM's cost,
  the best any one knob setting of the sweep does against the default knob's promise;
- ``max_accuracy`` and ``gain_over_bsm``;
- ``pgr``: the SCOPE paper's performance-gap recovered,
  (max accuracy - worst single model) / (oracle - worst single model);
- ``apgr`` and ``cpt(x)``: RouteLLM's figures generalised to N models with the cheapest model as
  "weak" and BSM as "strong": PGR(c) = (acc(c) - weak) / (strong - weak) averaged over the cost axis
  normalised between the weak and the strong model's cost; CPT(x) is the smallest such normalised cost
  at which PGR reaches x (RouteLLM's "share of calls to the strong model" when there are two models).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scope_shared.errors import EvaluationError
from scope_shared.evaluation.points import Point, frontier, hull, model_points


@dataclass(frozen=True)
class Reference:
    """The test set's reference points, against which every router's curve is measured."""

    models: list[str]
    model_points: list[Point]
    bsm_index: int
    cheapest_index: int
    oracle: Point

    @property
    def bsm(self) -> Point:
        return self.model_points[self.bsm_index]

    @property
    def cheapest(self) -> Point:
        return self.model_points[self.cheapest_index]

    @property
    def cost_range(self) -> tuple[float, float]:
        costs = [p.cost for p in self.model_points]
        return min(costs), max(costs)

    @property
    def worst_accuracy(self) -> float:
        return min(p.accuracy for p in self.model_points)


def best_single_model(points: Sequence[Point]) -> int:
    """Index of the most accurate model (the cheaper one on ties)."""
    if not points:
        raise EvaluationError("no models")
    return min(range(len(points)), key=lambda j: (-points[j].accuracy, points[j].cost, j))


def cheapest_model(points: Sequence[Point]) -> int:
    """Index of the cheapest model (the more accurate one on ties)."""
    if not points:
        raise EvaluationError("no models")
    return min(range(len(points)), key=lambda j: (points[j].cost, -points[j].accuracy, j))


def oracle_choice(scores: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Per question, the cheapest model with the highest score (the cheapest correct model for 0/1
    scores; the cheapest model when none is correct). Missing scores count as 0."""
    s = np.nan_to_num(scores, nan=0.0)
    best = s.max(axis=1, keepdims=True)
    masked = np.where(s >= best - 1e-12, costs, np.inf)
    return np.argmin(masked, axis=1)


def lagrangian_choice(scores: np.ndarray, costs: np.ndarray, lam: float) -> np.ndarray:
    """Per question, ``argmax(score - lam * cost)``, the cheaper model on ties (inf: cheapest)."""
    s = np.nan_to_num(scores, nan=0.0)
    if np.isinf(lam):
        return np.argmin(costs, axis=1)
    val = s - lam * costs
    top = val.max(axis=1, keepdims=True)
    return np.argmin(np.where(val >= top - 1e-12, costs, np.inf), axis=1)


def oracle_upper_bound(scores: np.ndarray, costs: np.ndarray, cost: float, lambdas: Sequence[float]) -> float:
    """An upper bound on the accuracy of ANY routing of these questions with mean cost <= ``cost``.

    For every lam >= 0 and any routing (A, C): A - lam C <= A_lam - lam C_lam, where (A_lam, C_lam) is
    the per-question Lagrangian oracle; so A <= min over lam of A_lam + lam (C - C_lam).
    """
    s = np.nan_to_num(scores, nan=0.0)
    rows = np.arange(len(s))
    bound = float(s.max(axis=1).mean())
    for lam in lambdas:
        ch = lagrangian_choice(s, costs, lam)
        a, c = float(s[rows, ch].mean()), float(costs[rows, ch].mean())
        bound = min(bound, a + lam * (cost - c))
    return bound


def reference(models: Sequence[str], scores: np.ndarray, costs: np.ndarray) -> Reference:
    """BSM, cheapest model and oracle of a test set (costs per (question, model) in USD)."""
    pts = model_points(scores, costs)
    rows = np.arange(len(scores))
    och = oracle_choice(scores, costs)
    oracle = Point(float(np.nan_to_num(scores, nan=0.0)[rows, och].mean()), float(costs[rows, och].mean()))
    return Reference(list(models), pts, best_single_model(pts), cheapest_model(pts), oracle)


def _normalise(cost: float, lo: float, hi: float) -> float:
    return (cost - lo) / (hi - lo) if hi > lo else 0.0


def step_area(points: Sequence[Point], lo: float, hi: float) -> float:
    """Exact area under the step frontier over cost in [lo, hi], cost axis scaled to [0, 1]."""
    if hi <= lo:
        raise EvaluationError(f"empty cost range [{lo}, {hi}]")
    front = frontier(points)
    area = 0.0
    for i, p in enumerate(front):
        start = max(_normalise(p.cost, lo, hi), 0.0)
        end = min(_normalise(front[i + 1].cost, lo, hi), 1.0) if i + 1 < len(front) else 1.0
        if end > start:
            area += p.accuracy * (end - start)
    return area


def hull_area(points: Sequence[Point], lo: float, hi: float) -> float:
    """Exact area under the non-decreasing convex hull over cost in [lo, hi], scaled to [0, 1]."""
    if hi <= lo:
        raise EvaluationError(f"empty cost range [{lo}, {hi}]")
    line = hull(points)
    xs = np.array([_normalise(p.cost, lo, hi) for p in line])
    ys = np.array([p.accuracy for p in line])
    start = max(float(xs[0]), 0.0)  # nothing is reachable below the router's cheapest point
    if start >= 1.0:
        return 0.0
    g = np.unique(np.concatenate([[start, 1.0], xs[(xs > start) & (xs < 1.0)]]))
    v = np.interp(g, xs, ys)
    return float(np.sum((g[1:] - g[:-1]) * (v[1:] + v[:-1]) / 2.0))


def cost_saving_at(points: Sequence[Point], accuracy: float, ref_cost: float) -> float | None:
    """1 - (cheapest point reaching ``accuracy``) / ``ref_cost``; None if no point reaches it."""
    reach = [p.cost for p in points if p.accuracy >= accuracy - 1e-12]
    return (1.0 - min(reach) / ref_cost) if reach and ref_cost > 0 else None


def pgr_curve(points: Sequence[Point], weak: Point, strong: Point, xs: np.ndarray) -> np.ndarray:
    """PGR of the step frontier at normalised costs ``xs`` (0 = weak model's cost, 1 = strong's)."""
    front = frontier(points)
    gap = strong.accuracy - weak.accuracy
    if gap <= 0 or not front:
        return np.zeros(len(xs))
    fc = np.array([_normalise(p.cost, weak.cost, strong.cost) for p in front])
    fa = np.array([p.accuracy for p in front])
    idx = np.searchsorted(fc, xs + 1e-12, side="right") - 1
    acc = np.where(idx >= 0, fa[np.clip(idx, 0, None)], np.nan)
    return np.where(np.isfinite(acc), (acc - weak.accuracy) / gap, 0.0)


def apgr(points: Sequence[Point], weak: Point, strong: Point) -> float:
    """RouteLLM's average performance-gap recovered over normalised cost [0, 1] (exact, step)."""
    if strong.cost <= weak.cost or strong.accuracy <= weak.accuracy:
        return float("nan")
    front = frontier(points)
    xs = np.unique(np.clip([_normalise(p.cost, weak.cost, strong.cost) for p in front] + [0.0, 1.0], 0, 1))
    vals = pgr_curve(points, weak, strong, xs[:-1])
    return float(np.sum(vals * np.diff(xs)))


def cpt(points: Sequence[Point], weak: Point, strong: Point, target: float) -> float | None:
    """RouteLLM's cost-to-reach-``target`` PGR, as normalised cost (None if never reached)."""
    if strong.cost <= weak.cost or strong.accuracy <= weak.accuracy:
        return None
    gap = strong.accuracy - weak.accuracy
    reach = [p.cost for p in points if (p.accuracy - weak.accuracy) / gap >= target - 1e-12]
    return max(_normalise(min(reach), weak.cost, strong.cost), 0.0) if reach else None


def summarize(points: Sequence[Point], ref: Reference) -> dict[str, float | None]:
    """Every curve figure of one router against ``ref`` (see the module docstring)."""
    if not points:
        raise EvaluationError("a router gave no points")
    lo, hi = ref.cost_range
    max_acc = max(p.accuracy for p in points)
    gap = ref.oracle.accuracy - ref.worst_accuracy
    return {
        "auc": step_area(points, lo, hi),
        "aiq": hull_area(points, lo, hi),
        "max_accuracy": max_acc,
        "gain_over_bsm": max_acc - ref.bsm.accuracy,
        "cost_saving_at_bsm": cost_saving_at(points, ref.bsm.accuracy, ref.bsm.cost),
        "cost_share_within_1pt": _share(cost_saving_at(points, ref.bsm.accuracy - 0.01, ref.bsm.cost)),
        "pgr": (max_acc - ref.worst_accuracy) / gap if gap > 0 else None,
        "apgr": _none_if_nan(apgr(points, ref.cheapest, ref.bsm)),
        "cpt50": cpt(points, ref.cheapest, ref.bsm, 0.5),
        "cpt80": cpt(points, ref.cheapest, ref.bsm, 0.8),
    }


def _share(saving: float | None) -> float | None:
    return None if saving is None else 1.0 - saving


def _none_if_nan(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)
