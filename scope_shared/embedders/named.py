"""Embedders by name: ``"minilm"`` (the bundled all-MiniLM-L6-v2), ``"fast"`` (a static model
distilled from it, built once on this machine and cached) and ``"routing"`` (the fast model tuned on
a history's outcomes, `scope_shared.embedders.tuning`; ``scope embedder train``).

The fast model is built offline from the bundled teacher (2-7 minutes on 2 busy cores; ``scope
embedder build``) or, if missing, at first use. It lives in ``$SCOPE_CACHE_DIR/embedders`` (default
``~/.cache/scope-router/embedders``) or ``$SCOPE_EMBEDDER_DIR``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scope_shared.embedders.base import Embedder, LangChainEmbedder
from scope_shared.embedders.cache import cache_dir
from scope_shared.embedders.distill import BUILD_FILE, DistillConfig, distill_static
from scope_shared.embedders.minilm import SentenceTransformerEmbedder, default_embedder, default_model_path
from scope_shared.embedders.static import StaticEmbedder, Truncation
from scope_shared.embedders.tuning import ROUTING, load_tuned, tuned_build
from scope_shared.errors import EmbedderError

_log = logging.getLogger(__name__)
MINILM, FAST = "minilm", "fast"
#: what each name means (``scope embedder list``)
DESCRIPTIONS = {
    MINILM: "all-MiniLM-L6-v2, the bundled sentence-transformers model (6 transformer layers)",
    FAST: "static token vectors distilled from all-MiniLM-L6-v2 (model2vec recipe): a lookup and a mean",
    ROUTING: "the fast vectors tuned on a history's outcomes so that neighbours share outcomes (same speed)",
}
#: names that mean the bundled MiniLM (the second is what histories built with it record)
MINILM_ALIASES = (MINILM, "all-MiniLM-L6-v2", "default")


@dataclass(frozen=True)
class FastSpec:
    """What the ``"fast"`` embedder is: how it is distilled and which tokens of long texts it reads.

    Default truncation: the last 512 tokens. Measured on the validation parts of the history parts
    of routerbench-11 (long few-shot prompts, question last) and llmrouter-9, 5 seeds
    (``benchmarks/embed_truncation.py``): reading only the head loses 1.2 AUC points on
    routerbench-11, the tail keeps the signal; 512 tokens keep 90% of those prompts whole and bound
    the cost of very long ones.
    """

    distill: DistillConfig = field(default_factory=DistillConfig)
    truncation: Truncation = field(default_factory=lambda: Truncation(tail=512))

    @property
    def folder_name(self) -> str:
        """Folder (and name stem) of the built model; non-default builds get their settings in it."""
        d = self.distill
        name = f"m2v-all-MiniLM-L6-v2-{d.pca_dims}d"
        if d.sif_coefficient != DistillConfig.sif_coefficient:
            name += f"-sif{d.sif_coefficient:g}"
        if d.vocab_size is not None:
            name += f"-v{d.vocab_size}"
        return name


def embedders_dir() -> Path:
    """Where built embedders are kept."""
    env = os.environ.get("SCOPE_EMBEDDER_DIR")
    if env:
        return Path(env)
    return cache_dir() / "embedders"


def fast_model_dir(spec: FastSpec | None = None) -> Path:
    return embedders_dir() / (spec or FastSpec()).folder_name


def is_built(spec: FastSpec | None = None) -> bool:
    return (fast_model_dir(spec) / BUILD_FILE).is_file()


def build_fast(spec: FastSpec | None = None, force: bool = False, show_progress: bool = True) -> Path:
    """Distil the fast model from the bundled MiniLM into the cache (no download); returns its folder.
    Does nothing if it is already built, unless ``force``."""
    spec = spec or FastSpec()
    out = fast_model_dir(spec)
    if is_built(spec) and not force:
        return out
    return distill_static(default_model_path(), out, spec.distill, show_progress=show_progress, replace=force)


_FAST: dict[FastSpec, StaticEmbedder] = {}
_FAST_LOCK = threading.Lock()


def fast_embedder(spec: FastSpec | None = None, build: bool = True) -> StaticEmbedder:
    """The process-wide fast embedder, built on first use if missing (``build=False``: raise instead)."""
    spec = spec or FastSpec()
    with _FAST_LOCK:
        if spec not in _FAST:
            if not is_built(spec):
                if not build:
                    raise EmbedderError(
                        f"the fast embedder is not built yet ({fast_model_dir(spec)}); run 'scope embedder build'"
                    )
                _log.warning("distilling the fast embedder from the bundled MiniLM, once on this machine "
                             "(2-10 minutes; 'scope embedder build' does it ahead) into %s", fast_model_dir(spec))
                build_fast(spec)
            _FAST[spec] = StaticEmbedder(fast_model_dir(spec), truncation=spec.truncation)
        return _FAST[spec]


def routing_model_dir() -> Path:
    """Where ``scope embedder train`` writes the routing-tuned embedder (``"routing"``)."""
    return embedders_dir() / ROUTING


_ROUTING: dict[Path, StaticEmbedder] = {}


def routing_embedder() -> StaticEmbedder:
    """The routing-tuned embedder trained on this machine (``scope embedder train``), loaded once."""
    path = routing_model_dir()
    with _FAST_LOCK:
        cached = _ROUTING.get(path)
        build = tuned_build(path)
        if build is None:
            raise EmbedderError(f"no routing-tuned embedder at {path}; train one with 'scope embedder train'")
        if cached is None or cached.name != build.get("name"):  # retrained since it was loaded
            _ROUTING[path] = cached = load_tuned(path)
        return cached


def named_embedder(name: str) -> Embedder | None:
    """The embedder a name stands for: ``"minilm"`` / ``"fast"`` / ``"routing"`` or the name a history
    recorded for one of them; ``None`` if the name is none of these (then it may be a model path)."""
    if name in MINILM_ALIASES:
        return default_embedder()
    if name == FAST or name == fast_recorded_name():
        return fast_embedder()
    if name == ROUTING:
        return routing_embedder()
    if name.startswith(f"{ROUTING}-"):
        tuned = routing_embedder()
        if tuned.name != name:
            raise EmbedderError(f"the history was embedded with the routing-tuned embedder {name!r}, but the one "
                             f"trained here is {tuned.name!r}; re-embed the history or train on it again")
        return tuned
    return None


def fast_recorded_name(spec: FastSpec | None = None) -> str:
    """The name histories embedded by the fast embedder record (its folder plus its truncation)."""
    spec = spec or FastSpec()
    label = spec.truncation.label
    return spec.folder_name + (f"+{label}" if label else "")


def as_embedder(obj: Any) -> Embedder:
    """Accept an Embedder, a LangChain Embeddings, a name (``"minilm"``, ``"fast"``), a
    sentence-transformers model path, or None (the bundled default)."""
    if obj is None:
        return default_embedder()
    if isinstance(obj, Embedder):
        return obj
    if isinstance(obj, str):
        return named_embedder(obj) or SentenceTransformerEmbedder(obj)
    if hasattr(obj, "embed_documents"):
        return LangChainEmbedder(obj)
    raise EmbedderError(f"cannot use {type(obj).__name__} as an embedder")


def expected_record(spec: str) -> tuple[str, int | None]:
    """What a history embedded by the embedder ``spec`` records, found without loading it: its name
    and, where the files say it, its dimension. ``spec`` is ``"minilm"``/``"fast"``, a name a history
    recorded for one of them, or a local sentence-transformers folder. Raises `ScopeError` for anything
    else: nothing is fetched from a model hub."""
    from scope_shared.embedders.minilm import default_model_path, pooled_dim

    if spec in MINILM_ALIASES:
        return "all-MiniLM-L6-v2", pooled_dim(default_model_path())
    if spec in (FAST, fast_recorded_name()):
        return fast_recorded_name(), _built_dim() or FastSpec().distill.pca_dims
    if Path(spec).is_dir():
        return str(spec), pooled_dim(spec)
    raise EmbedderError(
        f"unknown embedder {spec!r}: use {MINILM!r} (the bundled MiniLM), {FAST!r} (distilled from it), "
        "or the path of a local sentence-transformers model folder"
    )


def _built_dim() -> int | None:
    """The dimension of the fast model built on this machine, from its config (None if not built)."""
    import json

    from scope_shared.embedders.distill import CONFIG_FILE

    try:
        return int(json.loads((fast_model_dir() / CONFIG_FILE).read_text(encoding="utf-8"))["hidden_dim"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
