"""LlamaIndex integration namespace for the bundled embedder (``from llama_index.embeddings.scope import ScopeEmbedding``).

``llama_index``, ``llama_index.embeddings`` are implicit namespace packages (no ``__init__.py``).
"""

from llamaindex_scope.embeddings import SCOPEEmbedding, ScopeEmbedding

__all__ = ["SCOPEEmbedding", "ScopeEmbedding"]
