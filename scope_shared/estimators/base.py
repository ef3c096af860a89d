"""The estimator interface: anchors in, predicted correctness and output length out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scope_shared.history import Anchors, History


@dataclass
class RawEstimates:
    """Per (query, model) predictions, arrays shaped (n_queries, n_models).

    ``output_tokens`` is NaN where the estimator has no length evidence; the router then uses the
    card's ``default_output_tokens`` (or the library default). ``rationales`` holds the reasoning
    text of estimators that reason.
    """

    p_correct: np.ndarray
    output_tokens: np.ndarray
    n_anchors: np.ndarray
    rationales: list[list[str | None]] | None = None


@dataclass(frozen=True)
class HistoryEstimates:
    """Estimates on history questions ``ids`` (P,), each hidden from itself as a new query would be:
    ``p_correct`` (P, n_models)."""

    ids: np.ndarray
    p_correct: np.ndarray


class Estimator(ABC):
    """Predicts, before any call, each model's chance of success and output length on a query.

    Estimators see models only through their behaviour in the history (anchor outcomes and
    model-level statistics), never through their names, so a model added to the history is served
    without retraining.
    """

    name: str = "estimator"
    #: how many anchors per (query, model) the router should retrieve for this estimator
    k: int = 10

    @abstractmethod
    def predict(
        self,
        queries: Sequence[str],
        query_embs: np.ndarray,
        anchors: Anchors,
        history: History,
    ) -> RawEstimates:
        """Predict for every query and every model of ``anchors.models``."""

    def prepare(self, history: History, models: Sequence[str] = ()) -> None:  # noqa: B027 - optional
        """Fit what ``predict`` needs for ``models`` now (default: nothing to fit). The router calls
        it when built and when models or outcomes join, so routed calls do not wait for fits."""

    def history_estimates(self, history: History, models: Sequence[str]) -> HistoryEstimates | None:
        """Estimates on some history questions as if each were new (each hidden from itself). A router
        calibrates its default knob on them against the outcomes there
        (`scope_shared.routing.margin_calibration`). Default: ``None``, this estimator cannot."""
        return None

    def onboarded_estimates(self, history: History, model: str, anchor_ids: np.ndarray) -> HistoryEstimates | None:
        """Estimates on the questions of `history_estimates` for a model the history knows well, as if
        it were known only from its outcomes on ``anchor_ids``: how sharp this estimator is for a model
        onboarded on those anchors, checked against what that model really did (``p_correct`` (P, 1)). A router calibrates
        its default knob for onboarded candidates on such stand-ins. Default: ``None``, it cannot."""
        return None

    def predict_for(
        self, queries: Sequence[str], query_embs: np.ndarray, models: Sequence[str], history: History
    ) -> RawEstimates:
        """Retrieve anchors and predict: the one-call form used by evaluation code."""
        return self.predict(queries, query_embs, history.anchors(query_embs, models, self.k), history)
