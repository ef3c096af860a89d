"""SCOPE router core: pre-hoc estimates of each model's accuracy and cost, from anchors, and routing
policies over them. Integrations (``langchain_scope``, ``llamaindex_scope``) are thin layers on this."""

from scope_shared.cards import ModelCard, Outcome
from scope_shared.decision import Decision, Estimate
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
from scope_shared.knobs import Knob, make_knob
from scope_shared.ledger import Ledger, LedgerEntry, Reservation
from scope_shared.router import Router

__version__ = "0.1.0"

__all__ = [
    "Anchors",
    "BudgetExceeded",
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
]
