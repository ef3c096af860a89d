"""Fast embedders beside the bundled MiniLM: a static model distilled from it (`distill`), the
embedder that reads it (`static`), and embedders by name, built once and cached (`named`).
`scope_shared.embedder` stays the public face and re-exports the names used from outside."""

from scope_shared.embedders.distill import DistillConfig, distill_static
from scope_shared.embedders.named import FAST, MINILM, FastSpec, build_fast, fast_embedder, named_embedder
from scope_shared.embedders.static import StaticEmbedder, Truncation

__all__ = [
    "FAST",
    "MINILM",
    "DistillConfig",
    "FastSpec",
    "StaticEmbedder",
    "Truncation",
    "build_fast",
    "distill_static",
    "fast_embedder",
    "named_embedder",
]
