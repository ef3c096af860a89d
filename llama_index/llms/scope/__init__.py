"""LlamaIndex integration namespace for SCOPE's routing LLM (``from llama_index.llms.scope import SCOPELLM``).

``llama_index``, ``llama_index.llms`` are implicit namespace packages (no ``__init__.py``), so this
sits beside the installed ``llama_index.core`` without shadowing it. The code is in ``llamaindex_scope``.
"""

from llamaindex_scope.budget import scope_budget
from llamaindex_scope.llm import SCOPELLM

__all__ = ["SCOPELLM", "scope_budget"]
