"""SCOPE routing for LlamaIndex: a selector among query engines / retrievers tied to models
(`SCOPESelector`, `SCOPERouterRetriever`), a routing LLM over candidate LLMs (`SCOPELLM`,
`SCOPEStructuredLLM`), a budget per pipeline (`scope_budget`), what to route on (`route_on`,
`mark_routing_text`), instrumentation events, and the bundled embedder (`SCOPEEmbedding`).

Only glue lives here: estimates, policies, ledger and the routed-call flow are ``scope_shared``'s.
"""

from scope_shared.extras import require_extra

require_extra("llamaindex", "llamaindex_scope (the LlamaIndex integration)")  # a clear error naming the extra, before any framework import

from llamaindex_scope.budget import current_budget, scope_budget
from llamaindex_scope.embeddings import SCOPEEmbedding
from llamaindex_scope.events import SCOPECostEvent, SCOPERoutingEvent
from llamaindex_scope.llm import SCOPELLM
from llamaindex_scope.retriever import SCOPERouterRetriever
from llamaindex_scope.selector import SCOPESelection, SCOPESelector
from llamaindex_scope.structured import SCOPEStructuredLLM
from scope_shared.calls import collect_calls
from llamaindex_scope.routing_text import mark_routing_text, query_text
from scope_shared.budget.ledger import Ledger
from scope_shared.routing.routing_text import ROUTING_TEXT_KEY, route_on

__all__ = [
    "ROUTING_TEXT_KEY",
    "Ledger",
    "SCOPECostEvent",
    "SCOPELLM",
    "SCOPEEmbedding",
    "SCOPERouterRetriever",
    "SCOPERoutingEvent",
    "SCOPESelection",
    "SCOPESelector",
    "SCOPEStructuredLLM",
    "collect_calls",
    "current_budget",
    "mark_routing_text",
    "query_text",
    "route_on",
    "scope_budget",
]
