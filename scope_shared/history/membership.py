"""Which models answered each question, as a bitmap, so anchor search tests a neighbour pool for
every model in one gather instead of one search per model.

Bit ``slot % 64`` of word ``slot // 64`` of a question's row is set when the model in ``slot`` (its
position among the history's models) has an outcome for it: 16 bytes a question for up to 128 models.
"""

from __future__ import annotations

import numpy as np


class Membership:
    """A (questions, words) uint64 bitmap that grows with the history (rows geometrically)."""

    def __init__(self) -> None:
        self.words = np.zeros((0, 1), dtype=np.uint64)

    def fit_questions(self, n: int) -> None:
        """Room for ``n`` questions."""
        if n > len(self.words):
            grown = np.zeros((max(n, 2 * len(self.words), 1024), self.words.shape[1]), np.uint64)
            grown[: len(self.words)] = self.words
            self.words = grown

    def fit_models(self, n: int) -> None:
        """Room for ``n`` models."""
        words = (n + 63) // 64
        if words > self.words.shape[1]:
            grown = np.zeros((len(self.words), words), np.uint64)
            grown[:, : self.words.shape[1]] = self.words
            self.words = grown

    def mark(self, qids: np.ndarray, slot: int) -> None:
        """The model in ``slot`` answered questions ``qids``."""
        self.words[np.unique(qids), slot // 64] |= np.uint64(1 << (slot % 64))

    def answered(self, qids: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Booleans of shape ``qids.shape + (len(slots),)``: did the model in each slot answer each question."""
        words = self.words[qids][..., slots // 64]
        return ((words >> (slots % 64).astype(np.uint64)) & np.uint64(1)).astype(bool)
