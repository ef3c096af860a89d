"""Nearest-neighbour index over question embeddings (inner product on unit vectors = cosine)."""

from __future__ import annotations

import faiss
import numpy as np


class VectorIndex:
    """Exact inner-product search with faiss, grown incrementally.

    Kept behind this small class so the storage precision or the index type (e.g. HNSW for very large
    histories) can change without touching the history or the estimators.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._index = faiss.IndexFlatIP(dim)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append vectors; their ids are their positions."""
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (similarities, ids), each (n_queries, k), best first; id -1 where fewer exist."""
        k = max(1, min(k, len(self)))
        return self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
