"""Accuracy and average cost of a set of choices on a routing table's test part."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Point:
    """Mean score and mean USD cost per query of one routing (one knob value)."""

    accuracy: float
    cost: float


def choice_point(scores: np.ndarray, costs: np.ndarray, choice: np.ndarray) -> Point:
    """The point of choosing model ``choice[i]`` (a column index) for question ``i``."""
    rows = np.arange(len(choice))
    return Point(float(np.nanmean(scores[rows, choice])), float(np.mean(costs[rows, choice])))


def model_points(scores: np.ndarray, costs: np.ndarray) -> list[Point]:
    """One point per model: always choosing it."""
    return [Point(float(np.nanmean(scores[:, j])), float(np.mean(costs[:, j]))) for j in range(scores.shape[1])]
