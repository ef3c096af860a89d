"""LangChain integration of the SCOPE router.

- `SCOPERouter`: a chat model over candidate chat models (LCEL chains, agents, LangGraph).
- `with_budget`: nest a budget inside the run's (a chain's budget inside a team's).
- `SCOPEMiddleware`: an ``AgentMiddleware`` for ``langchain.agents.create_agent`` that routes
  every model call (needs the ``langchain`` package; imported on first use).
"""

from __future__ import annotations

from scope_shared.extras import lazy_exports, require_extra

require_extra("langchain", "langchain_scope (the LangChain integration)")  # a clear error naming the extra, before any framework import

from langchain_scope.budget import with_budget
from langchain_scope.chat_model import SCOPERouter
from langchain_scope.config import LEDGER_KEY
from langchain_scope.routing_text import mark_routing_text, query_text
from langchain_scope.tools import NoToolCapableCandidate
from langchain_scope.validation import NoCandidatesError
from scope_shared.routing.routing_text import ROUTING_TEXT_KEY, route_on

__all__ = [
    "LEDGER_KEY",
    "ROUTING_TEXT_KEY",
    "NoCandidatesError",
    "NoToolCapableCandidate",
    "SCOPEMiddleware",
    "SCOPERouter",
    "mark_routing_text",
    "query_text",
    "route_on",
    "with_budget",
]


__getattr__ = lazy_exports(__name__, {"SCOPEMiddleware": "langchain_scope.middleware"})
