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
from llamaindex_scope.texts import mark_routing_text, query_from_prompt
from scope_shared.budget.ledger import Ledger
from scope_shared.routing.routing_text import ROUTING_TEXT_KEY, route_on

__all__ = [
    "ROUTING_TEXT_KEY",
    "Ledger",
    "SCOPECostEvent",
    "SCOPELLM",
    "SCOPERoutingEvent",
    "SCOPESelection",
    "SCOPESelector",
    "ScopeEmbedding",
    "current_budget",
    "mark_routing_text",
    "query_from_prompt",
    "route_on",
    "scope_budget",
]
