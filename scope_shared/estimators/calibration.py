"""Reliability of ``p_correct``: expected calibration error, and post-hoc calibrators (numpy only).

A calibrator maps raw probabilities to calibrated ones; it is fitted on validation data the
estimator did not train on (for history questions: leave-one-out predictions, `loo_predictions`).

- ``platt``: p' = sigmoid(a * logit(p) + b), fitted by Newton's method on the log-loss
  (temperature scaling is the case b = 0).
- ``isotonic``: a non-decreasing step function (pool-adjacent-violators), interpolated linearly.

`CalibratedEstimator` wraps any `Estimator` (kNN, learned, ...) and applies a calibrator to its
``p_correct``. Calibrators are saved as JSON (parameters or knots only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.atomic import atomic_write_json
from scope_shared.errors import EstimatorError
from scope_shared.estimators.base import Estimator, RawEstimates
from scope_shared.estimators.logistic import logit
from scope_shared.history import Anchors, History
from scope_shared.metrics import ece

_EPS = 1e-6
METHODS = ("platt", "isotonic")


def expected_calibration_error(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE with equal-width bins (`scope_shared.metrics.ece`), NaN pairs ignored.

    Raises `EstimatorError` when there is nothing to measure.
    """
    value = ece(p, y, bins=n_bins)
    if value is None:
        raise EstimatorError("no finite (prediction, outcome) pairs to measure calibration on")
    return value


def reliability_curve(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict[str, list[float]]:
    """Per bin: mean prediction, mean outcome and count (for a reliability plot)."""
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(y)
    p, y = p[ok], y[ok]
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    out: dict[str, list[float]] = {"mean_p": [], "mean_y": [], "count": []}
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            out["mean_p"].append(float(p[sel].mean()))
            out["mean_y"].append(float(y[sel].mean()))
            out["count"].append(float(sel.sum()))
    return out


@dataclass
class Calibrator:
    """A fitted map from raw to calibrated probabilities (``method`` platt or isotonic)."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if self.method == "platt":
            z = np.clip(self.params["a"] * logit(p, _EPS) + self.params["b"], -30, 30)
            return 1.0 / (1.0 + np.exp(-z))
        if self.method == "isotonic":
            return np.interp(p, self.params["x"], self.params["y"])
        raise EstimatorError(f"unknown calibration method {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"format": "scope-calibrator", "version": 1, "method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Calibrator":
        if d.get("format") != "scope-calibrator" or d.get("method") not in METHODS:
            raise EstimatorError("not a scope calibrator (format/method missing or unknown)")
        params = d.get("params") or {}
        need = ("a", "b") if d["method"] == "platt" else ("x", "y")
        if any(k not in params for k in need):
            raise EstimatorError(f"calibrator parameters {need} missing")
        return cls(d["method"], params)

    def save(self, path: str | Path) -> None:
        atomic_write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Calibrator":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            if isinstance(exc, EstimatorError):
                raise
            raise EstimatorError(f"cannot read calibrator {path}: {exc}") from None


def _platt_loss(x: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    z = np.clip(a * x + b, -30, 30)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def _fit_platt(p: np.ndarray, y: np.ndarray, iters: int = 100) -> dict[str, float]:
    """Newton's method with step halving on the mean log-loss of sigmoid(a * logit(p) + b)."""
    x = logit(p, _EPS)
    a, b = 1.0, 0.0
    loss = _platt_loss(x, y, a, b)
    for _ in range(iters):
        q = 1.0 / (1.0 + np.exp(-np.clip(a * x + b, -30, 30)))
        g = np.array([((q - y) * x).mean(), (q - y).mean()])
        w = q * (1 - q) + 1e-9
        h = np.array([[(w * x * x).mean(), (w * x).mean()], [(w * x).mean(), w.mean()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-6:
            na, nb = a - t * step[0], b - t * step[1]
            new = _platt_loss(x, y, na, nb)
            if new <= loss:
                break
            t /= 2
        if t <= 1e-6 or loss - new < 1e-12:
            a, b = (na, nb) if t > 1e-6 else (a, b)
            break
        a, b, loss = na, nb, new
    return {"a": float(a), "b": float(b)}


def _fit_isotonic(p: np.ndarray, y: np.ndarray, max_knots: int = 200) -> dict[str, list[float]]:
    order = np.argsort(p, kind="mergesort")
    xs, ys = p[order], y[order]
    vals, wts, lo = list(ys[:1]), [1.0], [0]
    for i in range(1, len(ys)):  # pool adjacent violators
        vals.append(float(ys[i]))
        wts.append(1.0)
        lo.append(i)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            vals[-2:], wts[-2:], lo[-2:] = [v], [w], [lo[-2]]
    starts = np.array(lo + [len(xs)])
    cx = np.array([xs[starts[i] : starts[i + 1]].mean() for i in range(len(vals))])
    cy = np.array(vals)
    if len(cx) > max_knots:  # thin the knots, keeping the ends
        keep = np.unique(np.linspace(0, len(cx) - 1, max_knots).round().astype(int))
        cx, cy = cx[keep], cy[keep]
    return {"x": [0.0, *cx.tolist(), 1.0], "y": [float(cy[0]), *cy.tolist(), float(cy[-1])]}


def fit_calibrator(p: np.ndarray, y: np.ndarray, method: str = "platt") -> Calibrator:
    """Fit a calibrator on raw predictions ``p`` and outcomes ``y`` (NaN pairs dropped)."""
    if method not in METHODS:
        raise EstimatorError(f"calibration method must be one of {METHODS}, got {method!r}")
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(y)
    if ok.sum() < 10:
        raise EstimatorError(f"calibration needs at least 10 labelled predictions, got {int(ok.sum())}")
    p, y = np.clip(p[ok], 0.0, 1.0), np.clip(y[ok], 0.0, 1.0)
    params = _fit_platt(p, y) if method == "platt" else _fit_isotonic(p, y)
    return Calibrator(method, params)


def history_outcomes(history: History, question_ids: np.ndarray, models: Sequence[str]) -> np.ndarray:
    """(n, n_models) scores of ``models`` on history questions (NaN where there is no outcome)."""
    ids = np.asarray(question_ids, dtype=np.int64)
    y = np.full((len(ids), len(models)), np.nan)
    for j, m in enumerate(models):
        arr = history.model_arrays(m)
        pos = np.clip(np.searchsorted(arr.ids, ids), 0, max(len(arr.ids) - 1, 0))
        has = (arr.ids[pos] == ids) if len(arr.ids) else np.zeros(len(ids), bool)
        y[has, j] = arr.scores[pos[has]]
    return y


def loo_predictions(estimator: Estimator, history: History, question_ids: np.ndarray, models: Sequence[str]) -> RawEstimates:
    """Leave-one-out predictions on history questions: each question's own outcomes are hidden."""
    ids = np.asarray(question_ids, dtype=np.int64)
    if hasattr(estimator, "predict_history"):
        return estimator.predict_history(history, ids, models)
    q = history.embeddings[ids]
    anchors = history.anchors(q, models, estimator.k, exclude_ids=ids)
    return estimator.predict([history.text(int(i)) for i in ids], q, anchors, history)


class CalibratedEstimator(Estimator):
    """Any estimator with a calibrator applied to its ``p_correct``."""

    def __init__(self, base: Estimator, calibrator: Calibrator) -> None:
        self.base = base
        self.calibrator = calibrator
        self.k = base.k
        self.name = f"{base.name}+{calibrator.method}"

    def __repr__(self) -> str:
        return f"CalibratedEstimator({self.base!r}, {self.calibrator.method})"

    def _wrap(self, raw: RawEstimates) -> RawEstimates:
        return RawEstimates(self.calibrator(raw.p_correct), raw.output_tokens, raw.n_anchors, raw.rationales)

    def predict(self, queries: Sequence[str], query_embs: np.ndarray, anchors: Anchors, history: History) -> RawEstimates:
        return self._wrap(self.base.predict(queries, query_embs, anchors, history))

    def predict_history(self, history: History, question_ids: np.ndarray, models: Sequence[str]) -> RawEstimates:
        return self._wrap(loo_predictions(self.base, history, question_ids, models))


def calibrate(
    estimator: Estimator, history: History, question_ids: np.ndarray, method: str = "platt", models: Sequence[str] | None = None
) -> CalibratedEstimator:
    """Fit a calibrator on leave-one-out predictions for ``question_ids`` and wrap ``estimator``."""
    models = list(models or history.models)
    raw = loo_predictions(estimator, history, question_ids, models)
    y = history_outcomes(history, question_ids, models)
    return CalibratedEstimator(estimator, fit_calibrator(raw.p_correct, y, method))
