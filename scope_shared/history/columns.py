"""Per-model outcome columns: sparse over questions, aggregated when a question is seen twice."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ModelArrays:
    """A model's outcomes as sorted arrays: question ids, mean score, typical output tokens (NaN = unknown)."""

    ids: np.ndarray
    scores: np.ndarray
    tokens: np.ndarray


@dataclass
class ModelColumn:
    """Running sums per question id; arrays are rebuilt lazily after a change."""

    sums: dict[int, list[float]] = field(default_factory=dict)  # qid -> [score_sum, n, logtok_sum, n_tok]
    _arrays: ModelArrays | None = None

    def add(self, qid: int, score: float, output_tokens: float | None) -> None:
        s = self.sums.setdefault(qid, [0.0, 0, 0.0, 0])
        s[0] += score
        s[1] += 1
        if output_tokens is not None:
            s[2] += math.log1p(output_tokens)
            s[3] += 1
        self._arrays = None

    def __len__(self) -> int:
        return len(self.sums)

    def arrays(self) -> ModelArrays:
        if self._arrays is None:
            ids = np.fromiter(sorted(self.sums), dtype=np.int64, count=len(self.sums))
            scores = np.empty(len(ids), dtype=np.float32)
            tokens = np.full(len(ids), np.nan, dtype=np.float32)
            for i, q in enumerate(ids.tolist()):
                s = self.sums[q]
                scores[i] = s[0] / s[1]
                if s[3]:
                    tokens[i] = math.expm1(s[2] / s[3])
            self._arrays = ModelArrays(ids, scores, tokens)
        return self._arrays

    def member(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For an array of question ids: (has an outcome?, position in the arrays)."""
        arr = self.arrays().ids
        if len(arr) == 0:
            return np.zeros(ids.shape, dtype=bool), np.zeros(ids.shape, dtype=np.int64)
        pos = np.clip(np.searchsorted(arr, ids), 0, len(arr) - 1)
        return (arr[pos] == ids) & (ids >= 0), pos
