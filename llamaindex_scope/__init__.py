"""SCOPE routing for LlamaIndex: a selector among query engines / retrievers tied to models
(`SCOPESelector`), a routing LLM over candidate LLMs (`SCOPELLM`), a budget per pipeline
(`scope_budget`), instrumentation events, and the bundled embedder as a LlamaIndex embedding.

Only glue lives here: estimates, policies, ledger and the routed-call flow are ``scope_shared``'s.
"""

from llamaindex_scope.budget import current_budget, scope_budget
from llamaindex_scope.embeddings import ScopeEmbedding
from llamaindex_scope.events import SCOPECostEvent, SCOPERoutingEvent
from llamaindex_scope.llm import SCOPELLM
from llamaindex_scope.selector import SCOPESelection, SCOPESelector
from llamaindex_scope.texts import query_from_prompt
from scope_shared.budget.ledger import Ledger

__all__ = [
    "Ledger",
    "SCOPECostEvent",
    "SCOPELLM",
    "SCOPERoutingEvent",
    "SCOPESelection",
    "SCOPESelector",
    "ScopeEmbedding",
    "current_budget",
    "query_from_prompt",
    "scope_budget",
]
