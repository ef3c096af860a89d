"""The library's own exception types.

Three kinds, so callers (and frameworks) can tell them apart:

- **input errors** (`ScopeInputError`, also ``ValueError``): a bad query, knob, card, store file,
  usage figure... Fix the input and call again. A bare ``ScopeError(...)`` is one of these (the
  library's historic meaning of ``ScopeError``), so ``raise ScopeError("...")`` stays a ``ValueError``.
- **runtime failures** (`ScopeRuntimeError`, also ``RuntimeError``): the input was fine, the world
  was not: every candidate failed, a reservation was used twice. LlamaIndex's synthesizers catch
  ``ValueError`` from an LLM call and answer "Empty Response"; these are not swallowed that way.
- **the budget stop** (`BudgetExceeded`): like ``asyncio.CancelledError`` it derives from
  ``BaseException``, not ``Exception``, so the ``except Exception`` of a default
  ``with_fallbacks``/``with_retry``, a tool-error handler or a synthesizer does not swallow it
  (and call a backup outside the budget). Catch it by name.

``except ScopeError`` catches the first two kinds; ``except (ScopeError, BudgetExceeded)`` all three.
Every error subclass in this library derives from `ScopeInputError` or `ScopeRuntimeError`.
"""

from __future__ import annotations

from typing import Any


class ScopeError(Exception):
    """Base class of the library's errors (input errors and runtime failures).

    Instantiated directly it makes a `ScopeInputError`: ``ScopeError("bad x")`` means bad input.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "ScopeError":
        if cls is ScopeError:
            cls = ScopeInputError
        return super().__new__(cls, *args, **kwargs)


class ScopeInputError(ScopeError, ValueError):
    """Bad input: the call can succeed once the input is fixed."""


class ScopeRuntimeError(ScopeError, RuntimeError):
    """A runtime failure with valid input (providers down, a reservation used twice)."""


class InvalidQueryError(ScopeInputError):
    """A query is empty, whitespace only, or not a string."""


class UnknownModelError(ScopeInputError, KeyError):
    """A model name is not among the router's candidates (or the history's models)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidCardError(ScopeInputError):
    """A model card is malformed: missing or negative price, empty name, duplicate names."""


class InvalidKnobError(ScopeInputError):
    """A routing knob or budget setting is out of range (negative budget, several knobs at once)."""


class UnknownArgumentError(ScopeInputError, TypeError):
    """A constructor was given a keyword it does not take (a misspelt knob, most likely); the
    message names the closest valid keyword. Also a ``TypeError``, as Python's own is."""


class InvalidUsageError(InvalidKnobError):
    """An amount to hold, settle or charge is not a finite number in range, or an entry field is unknown.

    Raised before the ledger changes: the reservation stays open, to be settled right or cancelled.
    """


class HistoryStoreError(ScopeInputError):
    """A history directory is missing, of another format version, or corrupt."""


class EstimatorError(ScopeInputError):
    """An estimator cannot produce an estimate (not fitted, incompatible history, bad config)."""


class AllCandidatesFailed(ScopeRuntimeError):
    """Every candidate that fits the budget raised an error that moves on to the next candidate.

    ``errors`` lists ``(model, exception)`` for every attempt, in order; ``__cause__`` is the last
    provider exception, so tracebacks (and filters that walk causes) see it.
    """

    def __init__(self, message: str, errors: list[tuple[str, BaseException]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[tuple[str, BaseException]] = list(errors or [])


class ReservationError(ScopeRuntimeError):
    """A reservation was settled after it was already settled or cancelled."""


class BudgetExceeded(BaseException):
    """What is left of a capping budget cannot pay for the call: the run stops.

    Not an ``Exception`` (see the module docstring): a budget stop passes through handlers that
    retry or fall back on errors. Attributes say which budget stopped the call and why:
    ``ledger`` (its name), ``mode`` (``"raise"``, or ``"end"`` when the integration ends the run
    gracefully instead), ``needed`` and ``left`` (USD).
    """

    def __init__(
        self,
        message: str,
        *,
        ledger: str | None = None,
        mode: str = "raise",
        needed: float | None = None,
        left: float | None = None,
    ) -> None:
        super().__init__(message)
        self.ledger = ledger
        self.mode = mode
        self.needed = needed
        self.left = left


class AnchorPackError(ScopeInputError):
    """An anchor pack is missing, of another format version, corrupt, or its questions are malformed."""


class OnboardingError(ScopeInputError):
    """Onboarding a model cannot go on: a model that cannot be called, a grader missing, a bad setting."""


class SharedStoreError(ScopeRuntimeError):
    """The shared (PostgreSQL) ledger or history cannot be used: a malformed URL, a server that does
    not answer, a timeout, or tables of another schema version."""
