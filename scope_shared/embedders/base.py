"""What an embedder is: texts in, L2-normalised float32 vectors out, with a per-text cache; plus the
adapters for a LangChain ``Embeddings`` object and for a plain function."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scope_shared.errors import EmbedderError


def _normalise(x: np.ndarray, who: str = "embedder") -> np.ndarray:
    """Unit rows; a row that is not finite or has no direction (all zeros) raises `ScopeError`,
    so nothing routes on, or caches, a vector that carries no evidence."""
    try:
        x = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbedderError(f"{who} returned something that is not an array of numbers ({exc})") from None
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise EmbedderError(f"{who} returned an array of shape {x.shape}, expected (n_texts, dim)")
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] < 1e-12) | ~np.isfinite(x).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EmbedderError(f"{who} returned a non-finite or all-zero vector (row {i} of {len(x)})")
    return (x / norms).astype(np.float32, copy=False)


class Embedder(ABC):
    """Embeds texts into L2-normalised float32 vectors; caches each text's vector (LRU)."""

    name: str = "embedder"

    def __init__(self, cache_size: int = 100_000) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    @abstractmethod
    def dim(self) -> int:
        """Dimension of the vectors."""

    @abstractmethod
    def _embed(self, texts: list[str], show_progress: bool) -> np.ndarray:
        """Embed texts that are not in the cache (no normalisation needed)."""

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Return an (n, dim) float32 array of unit vectors, one row per text."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            cached = {t: self._cache[t] for t in set(texts) if t in self._cache}
            for t in cached:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in cached))
        if missing:
            vecs = _normalise(self._embed(missing, show_progress), f"embedder {self.name!r}")
            if vecs.shape != (len(missing), self.dim):
                raise EmbedderError(
                    f"embedder {self.name!r} returned shape {vecs.shape}, expected ({len(missing)}, {self.dim})"
                )
            with self._lock:
                for t, v in zip(missing, vecs):
                    cached[t] = v
                    if self._cache_size > 0:
                        self._cache[t] = v
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([cached[t] for t in texts]).astype(np.float32, copy=False)

    def prime(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Put known vectors (e.g. from a disk cache) into the per-text cache; all or nothing."""
        vectors = _normalise(vectors, "cached vectors")
        if vectors.shape != (len(texts), self.dim):
            raise EmbedderError(f"cannot prime the cache: {vectors.shape} vectors for {len(texts)} texts of dimension {self.dim}")
        with self._lock:
            for t, v in zip(texts, vectors):
                self._cache[t] = v
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def embed_one(self, text: str) -> np.ndarray:
        """Embed a single text into a (dim,) vector."""
        return self.embed([text])[0]


class LangChainEmbedder(Embedder):
    """Adapter for any LangChain ``Embeddings`` object (``embed_documents``)."""

    def __init__(self, embeddings: Any, name: str | None = None, cache_size: int = 100_000) -> None:
        super().__init__(cache_size)
        if not hasattr(embeddings, "embed_documents"):
            raise EmbedderError("LangChainEmbedder needs an object with embed_documents(texts)")
        self._emb = embeddings
        self.name = name or type(embeddings).__name__
        self._dim = len(embeddings.embed_documents(["dimension probe"])[0])

    @property
    def dim(self) -> int:
        return self._dim

    def _embed(self, texts: list[str], show_progress: bool) -> np.ndarray:
        return np.asarray(self._emb.embed_documents(texts), dtype=np.float32)


class FunctionEmbedder(Embedder):
    """Wraps a function ``texts -> array``; handy for tests and for custom encoders."""

    def __init__(self, fn: Callable[[list[str]], Any], dim: int, name: str = "function") -> None:
        super().__init__()
        self._fn = fn
        self._dim = dim
        self.name = name

    @property
    def dim(self) -> int:
        return self._dim

    def _embed(self, texts: list[str], show_progress: bool) -> np.ndarray:
        return np.asarray(self._fn(texts), dtype=np.float32)
