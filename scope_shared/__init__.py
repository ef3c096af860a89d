"""SCOPE router core: pre-hoc estimates of each model's accuracy and cost, from anchors, and routing
policies over them. Integrations (``langchain_scope``, ``llamaindex_scope``) are thin layers on this."""

from scope_shared.budget import BaseLedger, Budgets, Ledger, LedgerEntry, Overshoot, Reservation, scope_budget
from scope_shared.cards import ModelCard, Outcome
from scope_shared.embedder import (
    Embedder,
    FunctionEmbedder,
    LangChainEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
)
from scope_shared.errors import (
    AllCandidatesFailed,
    BudgetExceeded,
    EstimatorError,
    HistoryStoreError,
    InvalidCardError,
    InvalidKnobError,
    InvalidQueryError,
    InvalidUsageError,
    ReservationError,
    ScopeError,
    ScopeInputError,
    ScopeRuntimeError,
    UnknownModelError,
)
from scope_shared.estimators import Estimator, KNNEstimator, RawEstimates
from scope_shared.history import Anchors, History
from scope_shared.routing import Decision, Estimate, Knob, Router, make_knob

__version__ = "0.1.0"

__all__ = [
    "AllCandidatesFailed",
    "Anchors",
    "BaseLedger",
    "BudgetExceeded",
    "Budgets",
    "Decision",
    "Embedder",
    "Estimate",
    "Estimator",
    "EstimatorError",
    "FunctionEmbedder",
    "History",
    "HistoryStoreError",
    "InvalidCardError",
    "InvalidKnobError",
    "InvalidQueryError",
    "InvalidUsageError",
    "KNNEstimator",
    "Knob",
    "LangChainEmbedder",
    "Ledger",
    "LedgerEntry",
    "ModelCard",
    "Outcome",
    "Overshoot",
    "RawEstimates",
    "ReservationError",
    "Reservation",
    "Router",
    "ScopeError",
    "ScopeInputError",
    "ScopeRuntimeError",
    "SentenceTransformerEmbedder",
    "UnknownModelError",
    "default_embedder",
    "make_knob",
    "scope_budget",
]
