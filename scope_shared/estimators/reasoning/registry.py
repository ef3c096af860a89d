"""A factory of reasoning estimators over one locally loaded model, for estimator registries.

`scope_shared.evaluation.scope_routers.register_reasoning_estimator` ("/models/scope-4b", or with
``SCOPE_REASONER_DIR`` set) adds it as ``scope-reasoning`` to the routing-quality benchmark, so
``benchmarks/routing_quality.py`` evaluates it beside kNN. It predicts every test question, which
needs a GPU for the real checkpoint; on a CPU use `evaluation.evaluate_on_table` with a cap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scope_shared.estimators.reasoning.backends import TransformersBackend
from scope_shared.estimators.reasoning.estimator import ReasoningEstimator


def reasoning_factory(model_dir: str | Path, k: int = 5, n_considered: int = 10, **backend_kwargs: Any):
    """A registry factory ``(history, split) -> ReasoningEstimator``; the model is loaded once."""
    backend: list[TransformersBackend] = []

    def factory(history: Any, split: Any) -> ReasoningEstimator:
        if not backend:
            backend.append(TransformersBackend(model_dir, **backend_kwargs))
        return ReasoningEstimator(backend[0], k=k, n_considered=n_considered)

    return factory
