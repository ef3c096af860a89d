"""A routing call is never failed by an estimator's bad numbers: the kNN estimate stands in.

`checked_predict` runs any estimator and checks what it returns. Every (query, model) pair it could
not estimate (it raised, returned the wrong shape, or a ``p_correct`` that is not a probability, or
an output length that is negative, infinite or absurd: NaN weights in a learned network, a NaN
calibrator, a predictor's garbage) gets the training-free kNN estimate instead, and its rationale
says so. `EstimatorError` (a misconfigured estimator: not trained, wrong dimension) is not a
failure of one call and still propagates, naming the problem.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from scope_shared.errors import EstimatorError
from scope_shared.estimators.base import Estimator, RawEstimates
from scope_shared.estimators.knn import KNNEstimator
from scope_shared.history import Anchors, History

log = logging.getLogger(__name__)

#: output lengths above this are not a prediction (no model writes a billion tokens)
MAX_OUTPUT_TOKENS = 1e9


def valid_pairs(raw: RawEstimates, shape: tuple[int, int]) -> np.ndarray:
    """(n_q, n_m) bool: pairs whose p_correct is in [0, 1] and length is NaN (unknown) or sane."""
    try:
        p = np.asarray(raw.p_correct, dtype=np.float64)
        t = np.asarray(raw.output_tokens, dtype=np.float64)
    except (TypeError, ValueError):
        return np.zeros(shape, bool)
    if p.shape != shape or t.shape != shape:
        return np.zeros(shape, bool)
    # comparisons are False for NaN: a NaN p fails, a NaN length (unknown) passes, +-inf fail
    return (p >= 0.0) & (p <= 1.0) & ~(t < 0.0) & ~(t > MAX_OUTPUT_TOKENS)


def checked_predict(
    estimator: Estimator,
    queries: Sequence[str],
    query_embs: np.ndarray,
    anchors: Anchors,
    history: History,
) -> RawEstimates:
    """``estimator.predict``, with the kNN estimate wherever it failed (see the module doc)."""
    shape = (len(queries), len(anchors.models))
    why = ""
    try:
        raw: RawEstimates | None = estimator.predict(queries, query_embs, anchors, history)
        ok = valid_pairs(raw, shape)
        if not ok.all():
            why = f"{estimator.name} gave a non-finite or out-of-range estimate"
    except EstimatorError:
        raise
    except Exception as exc:  # noqa: BLE001 - a routing call must not fail on the estimator
        if isinstance(estimator, KNNEstimator):
            raise
        raw, ok = None, np.zeros(shape, bool)
        why = f"{estimator.name} failed ({type(exc).__name__}: {str(exc)[:160]})"
    if ok.all():
        assert raw is not None
        return raw
    if isinstance(estimator, KNNEstimator):
        raise EstimatorError(f"the kNN estimator produced invalid estimates ({why})")
    log.warning("%s for %d of %d pairs; kNN estimates used", why, int((~ok).sum()), ok.size)
    fb = KNNEstimator().predict(queries, query_embs, anchors, history)
    if raw is None:
        p, t = fb.p_correct.copy(), fb.output_tokens.copy()
        n_anchors, old = fb.n_anchors, None
    else:
        p = np.where(ok, np.asarray(raw.p_correct, dtype=np.float64), fb.p_correct)
        t = np.where(ok, np.asarray(raw.output_tokens, dtype=np.float64), fb.output_tokens)
        n_anchors = raw.n_anchors if np.shape(raw.n_anchors) == shape else fb.n_anchors
        old = raw.rationales
    rationales = [
        [
            (old[i][j] if old is not None and len(old) == shape[0] and len(old[i]) == shape[1] else None)
            if ok[i, j]
            else f"{why}; knn estimate used"
            for j in range(shape[1])
        ]
        for i in range(shape[0])
    ]
    return RawEstimates(p_correct=p, output_tokens=t, n_anchors=n_anchors, rationales=rationales)
