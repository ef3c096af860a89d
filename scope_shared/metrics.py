"""Prediction-quality metrics, one owner for estimators, evaluation and benchmarks: AUROC, Brier and
calibration error of ``p_correct``, errors of predicted lengths. Numpy only (ground floor).

Outcomes may be fractional scores; AUROC binarises them at 0.5, Brier and calibration use them as is.
Pairs with a missing outcome (NaN) are left out.
"""

from __future__ import annotations

import numpy as np

from scope_shared.errors import EvaluationError


def _pairs(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(p, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise EvaluationError(f"predictions {p.shape} and outcomes {y.shape} differ in shape")
    keep = np.isfinite(p) & np.isfinite(y)
    return p[keep], y[keep]


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, tied values sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def auroc(p: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count one half); None if only one class is present."""
    p, y = _pairs(p, y)
    pos = y >= 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def brier(p: np.ndarray, y: np.ndarray) -> float | None:
    """Mean squared error of ``p`` against the outcomes."""
    p, y = _pairs(p, y)
    return float(np.mean((p - y) ** 2)) if len(p) else None


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float | None:
    """Expected calibration error: bin-size-weighted |mean p - mean outcome| over equal-width bins."""
    p, y = _pairs(p, y)
    if not len(p):
        return None
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)


def length_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, float | None]:
    """Median absolute relative error of predicted output tokens, and the share of predictions within
    the SCOPE paper's full-reward band, |pred - true| <= max(100, 25% of true)."""
    pred, true = _pairs(pred, true)
    if not len(pred):
        return {"median_abs_rel_error": None, "within_band": None, "n": 0}
    err = np.abs(pred - true)
    return {
        "median_abs_rel_error": float(np.median(err / np.maximum(true, 1.0))),
        "within_band": float(np.mean(err <= np.maximum(100.0, 0.25 * true))),
        "n": int(len(pred)),
    }


def median_abs_rel_error(pred: np.ndarray, true: np.ndarray) -> float | None:
    """Median of |pred - true| / true over pairs with true > 0 (e.g. cost per call)."""
    pred, true = _pairs(pred, true)
    keep = true > 0
    return float(np.median(np.abs(pred[keep] - true[keep]) / true[keep])) if keep.any() else None
