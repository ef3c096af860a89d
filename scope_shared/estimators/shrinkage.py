"""Never worse than the prior: far from the history, estimates shrink toward a model's level.

An estimate built from neighbours is only as good as the neighbours are near. `Shrinkage` blends,
in logit space, an estimator's logit ``eta`` with the model's overall level ``prior``:

    logit p = s * eta + (1 - s) * prior,    s = sigmoid(alpha + beta * (closeness - centre))

where ``closeness`` is the mean similarity of the query's nearest history questions. `fit_shrinkage`
chooses ``alpha`` and ``beta`` by log-loss on views of the history itself: leave-one-out questions
(what a query near the history looks like) and leave-benchmark-out questions (a kind of question the
history has never seen), never on a test part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scope_shared.estimators.logistic import sigmoid

ALPHAS = np.linspace(-4.0, 6.0, 21)
#: observations the grid search reads at most (an even thinning beyond; the fit is two numbers)
MAX_OBSERVATIONS = 6000
BETAS = np.linspace(0.0, 40.0, 21)


@dataclass(frozen=True)
class Shrinkage:
    """How much of an estimate survives at a given closeness (see the module doc); the default
    keeps it whole."""

    alpha: float = 30.0
    beta: float = 0.0
    centre: float = 0.0

    def weight(self, closeness: np.ndarray) -> np.ndarray:
        """``s`` in [0, 1] per query."""
        return sigmoid(self.alpha + self.beta * (np.asarray(closeness, np.float64) - self.centre))

    def apply(self, eta: np.ndarray, prior: np.ndarray, closeness: np.ndarray) -> np.ndarray:
        """Shrunk logits: ``eta`` (n_q, n_m), ``prior`` (n_m,) or (n_q, n_m), closeness (n_q,)."""
        s = self.weight(closeness)[:, None]
        return s * eta + (1.0 - s) * prior


def log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean binary log-loss of logits against (soft) labels in [0, 1]."""
    return float(np.mean(np.logaddexp(0.0, logits) - y * logits))


def fit_shrinkage(eta: np.ndarray, prior: np.ndarray, closeness: np.ndarray, y: np.ndarray) -> Shrinkage:
    """The (alpha, beta) of least log-loss on flat arrays of observations (one per question and
    model): the estimator's logit, the model's prior logit, the question's closeness, the outcome."""
    eta, prior, closeness, y = (np.asarray(a, np.float64).ravel() for a in (eta, prior, closeness, y))
    if len(y) > MAX_OBSERVATIONS:
        keep = np.linspace(0, len(y) - 1, MAX_OBSERVATIONS).astype(np.int64)
        eta, prior, closeness, y = eta[keep], prior[keep], closeness[keep], y[keep]
    centre = float(np.median(closeness)) if len(closeness) else 0.0
    best = Shrinkage(centre=centre)
    if not len(y):
        return best
    best_loss = log_loss(eta, y)
    for a in ALPHAS:
        for b in BETAS:
            s = sigmoid(a + b * (closeness - centre))
            loss = log_loss(s * eta + (1 - s) * prior, y)
            if loss < best_loss - 1e-9:
                best, best_loss = Shrinkage(float(a), float(b), centre), loss
    return best
