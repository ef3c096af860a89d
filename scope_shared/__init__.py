"""SCOPE router core: pre-hoc estimates of each model's accuracy and cost, from anchors, and routing
policies over them. Integrations (``langchain_scope``, ``llamaindex_scope``) are thin layers on this."""

from scope_shared.budget import Ledger, LedgerEntry, Reservation, scope_budget
from scope_shared.calls import AllCandidatesFailed
from scope_shared.cards import ModelCard, Outcome
from scope_shared.embedder import (
    Embedder,
    FunctionEmbedder,
    LangChainEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
)
from scope_shared.errors import (
    BudgetExceeded,
    EstimatorError,
    HistoryStoreError,
    InvalidCardError,
    InvalidKnobError,
    InvalidQueryError,
    ScopeError,
    UnknownModelError,
)
from scope_shared.estimators import Estimator, KNNEstimator, RawEstimates
from scope_shared.history import Anchors, History
from scope_shared.routing import Decision, Estimate, Explorer, Knob, Router, make_knob

__version__ = "0.1.0"

__all__ = [
    "AllCandidatesFailed",
    "Anchors",
    "BudgetExceeded",
    "Decision",
    "Embedder",
    "Estimate",
    "Estimator",
    "EstimatorError",
    "Explorer",
    "FunctionEmbedder",
    "History",
    "HistoryStoreError",
    "InvalidCardError",
    "InvalidKnobError",
    "InvalidQueryError",
    "KNNEstimator",
    "Knob",
    "LangChainEmbedder",
    "Ledger",
    "LedgerEntry",
    "ModelCard",
    "Outcome",
    "RawEstimates",
    "Reservation",
    "Router",
    "ScopeError",
    "SentenceTransformerEmbedder",
    "UnknownModelError",
    "default_embedder",
    "make_knob",
    "scope_budget",
]
