"""The library's own exception types: every bad input surfaces as one of these, naming the problem."""

from __future__ import annotations


class ScopeError(ValueError):
    """Base class of all errors raised by the SCOPE router for bad input or bad state."""


class InvalidQueryError(ScopeError):
    """A query is empty, whitespace only, or not a string."""


class UnknownModelError(ScopeError, KeyError):
    """A model name is not among the router's candidates (or the history's models)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidCardError(ScopeError):
    """A model card is malformed: missing or negative price, empty name, duplicate names."""


class InvalidKnobError(ScopeError):
    """A routing knob is out of range (negative budget, min_accuracy above 1, several knobs at once)."""


class BudgetExceeded(ScopeError):
    """What is left of a budget cannot pay for any candidate, and the router is set to raise."""


class AllCandidatesFailed(ScopeError):
    """Every candidate that fits the budget raised; the attempts say why."""


class HistoryStoreError(ScopeError):
    """A history directory is missing, of another format version, or corrupt."""


class EstimatorError(ScopeError):
    """An estimator cannot produce an estimate (not fitted, incompatible history, bad config)."""


class SharedStoreError(ScopeError):
    """The shared (PostgreSQL) ledger or history cannot be used: a malformed URL, a server that does
    not answer, a timeout, or tables of another schema version."""
