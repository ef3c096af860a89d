"""Estimators: from anchors to predicted correctness and output length."""

from scope_shared.estimators.base import Estimator, RawEstimates
from scope_shared.estimators.knn import KNNEstimator, tune_knn

__all__ = ["Estimator", "KNNEstimator", "RawEstimates", "tune_knn"]
