"""Anchors: for each query and each model, the most similar history questions that model answered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Anchors:
    """Arrays shaped (n_queries, n_models, k); unused slots have ``mask`` False and id -1.

    ``scores`` are the model's (mean) outcome scores on the anchor questions, ``tokens`` its output
    token counts there (NaN where unknown).
    """

    models: tuple[str, ...]
    ids: np.ndarray
    sims: np.ndarray
    scores: np.ndarray
    tokens: np.ndarray
    mask: np.ndarray

    @property
    def k(self) -> int:
        return int(self.ids.shape[2])

    def for_model(self, j: int) -> "Anchors":
        """The anchors of one model, keeping a model axis of length 1."""
        sl = slice(j, j + 1)
        return Anchors(
            (self.models[j],),
            self.ids[:, sl],
            self.sims[:, sl],
            self.scores[:, sl],
            self.tokens[:, sl],
            self.mask[:, sl],
        )
