"""SCOPE router core: pre-hoc estimates of each model's accuracy and cost, from anchors, and routing
policies over them. Integrations (``langchain_scope``, ``llamaindex_scope``) are thin layers on this.

The names here are the public face: what the README uses and the extension points (ledgers,
embedders, estimators, the error bases). Everything else is imported from its own module: every
error class from ``scope_shared.errors``, knobs from ``scope_shared.routing``, ledger records from
``scope_shared.budget``."""

from scope_shared.budget import BaseLedger, Budgets, Ledger, scope_budget
from scope_shared.cards import ModelCard, Outcome
from scope_shared.embedders import Embedder, FunctionEmbedder, SentenceTransformerEmbedder, default_embedder
from scope_shared.errors import AllCandidatesFailed, BudgetExceeded, ScopeError, ScopeInputError, ScopeRuntimeError
from scope_shared.estimators import Estimator, KNNEstimator, PanelEstimator
from scope_shared.extras import lazy_exports
from scope_shared.history import History
from scope_shared.routing import Decision, Estimate, Explorer, Router

__version__ = "0.1.0"

# onboarding sits on the top floor: loaded on first use, so ``import scope_shared`` stays light
_LAZY = {
    "AnchorPack": "scope_shared.onboarding.pack",
    "load_pack": "scope_shared.onboarding.pack",
    "onboard": "scope_shared.onboarding.runner",
    "OnboardingResult": "scope_shared.onboarding.runner",
}


__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "AllCandidatesFailed",
    "AnchorPack",
    "BaseLedger",
    "BudgetExceeded",
    "Budgets",
    "Decision",
    "Embedder",
    "Estimate",
    "Estimator",
    "Explorer",
    "FunctionEmbedder",
    "History",
    "KNNEstimator",
    "Ledger",
    "ModelCard",
    "OnboardingResult",
    "Outcome",
    "PanelEstimator",
    "Router",
    "ScopeError",
    "ScopeInputError",
    "ScopeRuntimeError",
    "SentenceTransformerEmbedder",
    "default_embedder",
    "load_pack",
    "onboard",
    "scope_budget",
]
