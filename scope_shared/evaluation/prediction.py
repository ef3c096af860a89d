"""Per-model quality of an estimator's predictions on a test part (level error and AUROC per model);
the metrics themselves live in `scope_shared.metrics`."""

from __future__ import annotations

import numpy as np

from scope_shared.errors import EvaluationError
from scope_shared.metrics import auroc


def per_model_quality(p: np.ndarray, y: np.ndarray, models: list[str]) -> dict[str, dict[str, float | None]]:
    """Per model (column): ``bias`` = mean p_correct - mean outcome (its level error; e.g. a held-out
    model under-rated by 6 points has -0.06) and ``auroc`` of its p_correct over the questions."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 2 or p.shape[1] != len(models):
        raise EvaluationError(f"predictions {p.shape}, outcomes {y.shape} and {len(models)} models do not match")
    out: dict[str, dict[str, float | None]] = {}
    for j, m in enumerate(models):
        keep = np.isfinite(p[:, j]) & np.isfinite(y[:, j])
        bias = float(p[keep, j].mean() - y[keep, j].mean()) if keep.any() else None
        out[m] = {"bias": bias, "auroc": auroc(p[:, j], y[:, j])}
    return out
