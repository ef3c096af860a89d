"""Estimators: from anchors to predicted correctness and output length.

The learned estimator and the calibration helpers import torch / more code, so they load lazily:
``from scope_shared.estimators import LearnedEstimator`` works without slowing ``import scope_shared``.
"""

from scope_shared.estimators.base import Estimator, RawEstimates
from scope_shared.estimators.knn import KNNEstimator, tune_knn
from scope_shared.estimators.panel import PanelEstimator
from scope_shared.extras import lazy_exports

_LAZY = {
    "LearnedEstimator": "scope_shared.estimators.learned",
    "LearnedConfig": "scope_shared.estimators.learned",
    "CalibratedEstimator": "scope_shared.estimators.calibration",
    "Calibrator": "scope_shared.estimators.calibration",
    "calibrate": "scope_shared.estimators.calibration",
    "expected_calibration_error": "scope_shared.estimators.calibration",
    "fit_calibrator": "scope_shared.estimators.calibration",
}


__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["Estimator", "KNNEstimator", "PanelEstimator", "RawEstimates", "tune_knn", *_LAZY]
