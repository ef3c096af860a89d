"""`SCOPEEmbedding`: the router's embedder (by default the bundled all-MiniLM-L6-v2) as a LlamaIndex embedding.

Lets a ``VectorStoreIndex`` embed documents with the same offline model SCOPE routes with, so a
pipeline needs no second embedding model and no network.
"""

from __future__ import annotations

from typing import Any, List

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from scope_shared.embedders import Embedder, as_embedder


class SCOPEEmbedding(BaseEmbedding):
    """A LlamaIndex `BaseEmbedding` over a SCOPE `Embedder` (unit vectors, cached per text).

    Args:
        embedder: a SCOPE `Embedder` (or anything `as_embedder` accepts); ``None`` for the
            bundled all-MiniLM-L6-v2. Pass ``router.embedder`` to share the loaded model.
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder | Any = None, **kwargs: Any) -> None:
        emb = as_embedder(embedder)
        kwargs.setdefault("model_name", emb.name)
        super().__init__(**kwargs)
        self._embedder = emb

    @classmethod
    def class_name(cls) -> str:
        return "SCOPEEmbedding"

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._embedder.embed_one(query).tolist()

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._embedder.embed_one(text).tolist()

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._embedder.embed(list(texts)).tolist()


#: the first name of `SCOPEEmbedding`, kept so existing code keeps working
