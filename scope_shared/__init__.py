"""SCOPE router core: pre-hoc estimates of each model's accuracy and cost, from anchors, and routing
policies over them. Integrations (``langchain_scope``, ``llamaindex_scope``) are thin layers on this."""

from scope_shared.budget import BaseLedger, Budgets, Ledger, LedgerEntry, Overshoot, Reservation, scope_budget
from scope_shared.cards import ModelCard, Outcome
from scope_shared.embedders import (
    Embedder,
    FunctionEmbedder,
    LangChainEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
)
from scope_shared.errors import (
    AllCandidatesFailed,
    AnchorPackError,
    BudgetExceeded,
    EstimatorError,
    HistoryStoreError,
    InvalidCardError,
    InvalidKnobError,
    InvalidQueryError,
    InvalidUsageError,
    OnboardingError,
    ReservationError,
    ScopeError,
    ScopeInputError,
    ScopeRuntimeError,
    UnknownModelError,
)
from scope_shared.estimators import Estimator, KNNEstimator, PanelEstimator, RawEstimates
from scope_shared.history import Anchors, History
from scope_shared.routing import Decision, Estimate, Explorer, Knob, Router, make_knob

__version__ = "0.1.0"

# onboarding sits on the top floor: loaded on first use, so ``import scope_shared`` stays light
_LAZY = {
    "AnchorPack": "scope_shared.onboarding.pack",
    "load_pack": "scope_shared.onboarding.pack",
    "onboard": "scope_shared.onboarding.runner",
    "OnboardingResult": "scope_shared.onboarding.runner",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scope_shared' has no attribute {name!r}")


__all__ = [
    "AllCandidatesFailed",
    "AnchorPack",
    "AnchorPackError",
    "Anchors",
    "BaseLedger",
    "BudgetExceeded",
    "Budgets",
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
    "InvalidUsageError",
    "KNNEstimator",
    "Knob",
    "LangChainEmbedder",
    "Ledger",
    "LedgerEntry",
    "ModelCard",
    "OnboardingError",
    "OnboardingResult",
    "Outcome",
    "Overshoot",
    "PanelEstimator",
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
    "load_pack",
    "make_knob",
    "onboard",
    "scope_budget",
]
