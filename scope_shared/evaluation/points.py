"""Accuracy and average cost of a set of choices on a routing table's test part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scope_shared.errors import EvaluationError


@dataclass(frozen=True)
class Point:
    """Mean score and mean USD cost per query of one routing (one knob value)."""

    accuracy: float
    cost: float


def choice_point(scores: np.ndarray, costs: np.ndarray, choice: np.ndarray, overhead: float = 0.0) -> Point:
    """The point of choosing model ``choice[i]`` (a column index) for question ``i``.

    ``overhead`` is the router's own cost per query (embedding, predictor), added to the mean cost so
    that savings are net.
    """
    choice = np.asarray(choice, dtype=np.int64)
    if choice.shape != (scores.shape[0],):
        raise EvaluationError(f"one choice per question is needed: got {choice.shape}, want ({scores.shape[0]},)")
    if len(choice) and (choice.min() < 0 or choice.max() >= scores.shape[1]):
        raise EvaluationError("a choice is not a column of the table")
    rows = np.arange(len(choice))
    return Point(float(np.nanmean(scores[rows, choice])), float(np.mean(costs[rows, choice])) + overhead)


def model_points(scores: np.ndarray, costs: np.ndarray) -> list[Point]:
    """One point per model: always choosing it."""
    return [Point(float(np.nanmean(scores[:, j])), float(np.mean(costs[:, j]))) for j in range(scores.shape[1])]


def curve(scores: np.ndarray, costs: np.ndarray, choices: Sequence[np.ndarray], overhead: float = 0.0) -> list[Point]:
    """The points of a router over its knob sweep: one point per choice vector."""
    return [choice_point(scores, costs, c, overhead) for c in choices]


def frontier(points: Sequence[Point]) -> list[Point]:
    """The upper-left (Pareto) frontier: points no other point beats on both accuracy and cost.

    Sorted by cost; accuracy strictly increases along it. Ties keep the cheaper (then first) point.
    """
    out: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cost, -p.accuracy)):
        if not out or p.accuracy > out[-1].accuracy:
            out.append(p)
    return out


def hull(points: Sequence[Point]) -> list[Point]:
    """The non-decreasing upper convex hull of the points (RouterBench's achievable curve).

    Any point on a segment between two routings is reachable by mixing them at random, so the hull
    is what a router can achieve; starts at the cheapest point, ends at the most accurate one.
    """
    front = frontier(points)
    out: list[Point] = []
    for p in front:
        while len(out) >= 2:
            a, b = out[-2], out[-1]
            # b is under (or on) the segment a -> p: drop it
            cross = (b.cost - a.cost) * (p.accuracy - a.accuracy) - (b.accuracy - a.accuracy) * (p.cost - a.cost)
            if cross >= 0:
                out.pop()
            else:
                break
        out.append(p)
    return out


def accuracy_at(points: Sequence[Point], cost: float, interpolate: bool = False) -> float:
    """Best accuracy reachable at mean cost <= ``cost``: step frontier, or the hull if ``interpolate``.

    Below the router's cheapest point nothing is reachable: NaN.
    """
    line = hull(points) if interpolate else frontier(points)
    if not line or cost < line[0].cost - 1e-15:
        return float("nan")
    if not interpolate:
        return max(p.accuracy for p in line if p.cost <= cost + 1e-15)
    if cost >= line[-1].cost:
        return line[-1].accuracy
    xs = np.array([p.cost for p in line])
    ys = np.array([p.accuracy for p in line])
    return float(np.interp(cost, xs, ys))
