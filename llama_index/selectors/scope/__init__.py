"""LlamaIndex integration namespace for SCOPE's selector (``from llama_index.selectors.scope import SCOPESelector``).

``llama_index``, ``llama_index.selectors`` are implicit namespace packages (no ``__init__.py``).
The code is in ``llamaindex_scope``.
"""

from llamaindex_scope.budget import scope_budget
from llamaindex_scope.retriever import SCOPERouterRetriever
from llamaindex_scope.selector import SCOPESelection, SCOPESelector

__all__ = ["SCOPERouterRetriever", "SCOPESelection", "SCOPESelector", "scope_budget"]
