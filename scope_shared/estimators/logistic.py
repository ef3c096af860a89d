"""The logistic link, in one place: probabilities to log-odds (clipped) and back."""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-x)``, the argument clipped to [-30, 30] so nothing overflows."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


def logit(p: np.ndarray | float, eps: float = 1e-6) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped to [eps, 1 - eps]: each caller says how far from 0 and
    1 its probabilities may be trusted (a kNN estimate from a few anchors far less than a fitted one)."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(q / (1 - q))
