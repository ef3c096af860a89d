"""LlamaIndex integration namespace for the bundled embedder (``from llama_index.embeddings.scope import SCOPEEmbedding``).

``llama_index``, ``llama_index.embeddings`` are implicit namespace packages (no ``__init__.py``).
"""

from llamaindex_scope.embeddings import SCOPEEmbedding

__all__ = ["SCOPEEmbedding"]
