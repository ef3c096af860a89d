"""Registering the reasoning estimator in the routing-quality benchmark's estimator registry.

``register_reasoning_estimator("/models/scope-4b")`` (or with ``SCOPE_REASONER_DIR`` set) adds
``scope-reasoning`` to `scope_shared.evaluation.scope_routers.SCOPE_ESTIMATORS`, so
``benchmarks/routing_quality.py`` evaluates it beside kNN. It predicts every test question, which
needs a GPU for the real checkpoint; on a CPU use `evaluation.evaluate_on_table` with a cap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scope_shared.estimators.reasoning.backends import TransformersBackend
from scope_shared.estimators.reasoning.estimator import ReasoningEstimator

ENV_DIR = "SCOPE_REASONER_DIR"


def reasoning_factory(model_dir: str | Path, k: int = 5, n_considered: int = 10, **backend_kwargs: Any):
    """A registry factory ``(history, split) -> ReasoningEstimator``; the model is loaded once."""
    backend: list[TransformersBackend] = []

    def factory(history: Any, split: Any) -> ReasoningEstimator:
        if not backend:
            backend.append(TransformersBackend(model_dir, **backend_kwargs))
        return ReasoningEstimator(backend[0], k=k, n_considered=n_considered)

    return factory


def register_reasoning_estimator(
    model_dir: str | Path | None = None, name: str = "scope-reasoning", **kwargs: Any
) -> bool:
    """Register under ``name`` if a model directory is given or in ``$SCOPE_REASONER_DIR``."""
    model_dir = model_dir or os.environ.get(ENV_DIR)
    if not model_dir:
        return False
    from scope_shared.evaluation.scope_routers import register_estimator

    register_estimator(name, reasoning_factory(model_dir, **kwargs))
    return True
