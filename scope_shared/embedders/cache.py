"""A disk cache of embeddings for whole data sets, so demos and benchmarks embed each text once.

Files are plain ``.npy`` (loaded with ``allow_pickle=False``) named by a hash of the embedder name and
the texts, written atomically. Default folder: ``$SCOPE_CACHE_DIR`` or ``~/.cache/scope-router``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scope_shared.atomic import atomic_write
from scope_shared.embedders.base import Embedder


def cache_dir() -> Path:
    return Path(os.environ.get("SCOPE_CACHE_DIR", Path.home() / ".cache" / "scope-router"))


def embed_with_cache(
    embedder: Embedder, texts: Sequence[str], show_progress: bool = True, folder: Path | None = None
) -> np.ndarray:
    """Embed ``texts``, reading and writing a disk cache keyed by embedder and content."""
    h = hashlib.sha256(embedder.name.encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\x00")
    path = (folder or cache_dir()) / f"emb-{h.hexdigest()[:24]}.npy"
    if path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.shape == (len(texts), embedder.dim):
                arr = arr.astype(np.float32, copy=False)
                embedder.prime(texts, arr)
                return arr
        except (ValueError, OSError):
            pass  # a bad cache file is simply recomputed
    arr = embedder.embed(list(texts), show_progress=show_progress)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    try:
        atomic_write(path, lambda f: f.write(buf.getvalue()))
    except OSError:
        pass  # caching is best effort (read-only home, full disk)
    return arr
