"""The library's own exception types.

Three kinds, so callers (and frameworks) can tell them apart:

- **input errors** (`ScopeInputError`, also ``ValueError``): a bad query, knob, card, store file,
  usage figure... Fix the input and call again.
- **runtime failures** (`ScopeRuntimeError`, also ``RuntimeError``): the input was fine, the world
  was not: every candidate failed, a reservation was used twice. LlamaIndex's synthesizers catch
  ``ValueError`` from an LLM call and answer "Empty Response"; these are not swallowed that way.
- **the budget stop** (`BudgetExceeded`): like ``asyncio.CancelledError`` it derives from
  ``BaseException``, not ``Exception``, so the ``except Exception`` of a default
  ``with_fallbacks``/``with_retry``, a tool-error handler or a synthesizer does not swallow it
  (and call a backup outside the budget). Catch it by name.

``except ScopeError`` catches the first two kinds; ``except (ScopeError, BudgetExceeded)`` all three.
Every error this library raises is of a concrete class below, named for what went wrong (a bad knob,
card, ledger, history, data set, embedder...), and derives from `ScopeInputError` or
`ScopeRuntimeError`; `ScopeError` and those two are bases to catch, never raised themselves.
"""

from __future__ import annotations


class ScopeError(Exception):
    """Base class of the library's errors (input errors and runtime failures); catch it, never raised."""


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
    """A routing knob is unknown or out of range (``max_cost < 0``, ``alpha > 1``, several knobs at once)."""


class InvalidBudgetError(ScopeInputError):
    """A budget setting is wrong: a ledger of the wrong type, a negative budget, an unknown budget mode,
    a bad period, lease or name of a shared budget, ledgers whose parents form a cycle."""


class InvalidSettingError(ScopeInputError):
    """A setting other than the knob or the budget is out of range or of the wrong kind: ``fallback_on``,
    an exploration rate, a vector index spec, ``default_output_tokens``, ``engine_prompt_tokens``."""


class InvalidComponentError(ScopeInputError):
    """A router or an integration was given a part of the wrong kind: a candidate that is not a chat
    model / LLM, a router that is not a ``Router``, an estimator, history or token counter that is not
    one (or a token counter that returns no count)."""


class NoCandidatesError(ScopeInputError):
    """There is no candidate model to route among: none given, or none left after filtering.
    Both integrations raise it (``langchain_scope.NoCandidatesError`` is this class)."""


class NoToolCapableCandidate(NoCandidatesError):
    """Tools are given, but no candidate (left) can call them: the same situation in both integrations
    (``langchain_scope.NoToolCapableCandidate`` is this class)."""


class ToolCallError(ScopeInputError):
    """Tool calls were asked of a budget-stop answer, which has none."""


class FeedbackError(ScopeInputError):
    """Feedback cannot be tied to a routed call: an unknown or malformed call id, a call with no
    answering model, a message or response that SCOPE did not route."""


class UnknownArgumentError(ScopeInputError, TypeError):
    """A constructor was given a keyword it does not take (a misspelt knob, most likely); the
    message names the closest valid keyword. Also a ``TypeError``, as Python's own is."""


class InvalidUsageError(InvalidBudgetError):
    """An amount to hold, settle or charge is not a finite number in range, or an entry field is unknown.

    Raised before the ledger changes: the reservation stays open, to be settled right or cancelled.
    """


class HistoryStoreError(ScopeInputError):
    """A history directory is missing, of another format version, or corrupt."""


class HistoryDataError(ScopeInputError):
    """Data given to (or asked of) a history is malformed: question ids out of range, embeddings of the
    wrong shape or with NaN, outcomes out of range, model or benchmark names that are not strings."""


class EstimatorError(ScopeInputError):
    """An estimator cannot produce an estimate (not fitted, incompatible history, bad config)."""


class EmbedderError(ScopeInputError):
    """An embedder cannot be built, loaded or used: a missing model package or file, a bad setting,
    vectors of the wrong shape or not finite, a history embedded with another embedder."""


class DataSetError(ScopeInputError):
    """A routing data set or table cannot be loaded or is inconsistent: a missing file, an unsupported
    format, a row without its fields, a model without a price, arrays that do not match."""


class EvaluationError(ScopeInputError):
    """The inputs of an evaluation do not fit together: a split, setting, score matrix or curve that is
    empty, out of range or of mismatched shape; an estimator name not registered."""


class UnpicklableError(ScopeInputError):
    """A live object (a router, a ledger, a shared history) was pickled: it holds shared state that a
    copy would fork. Share the object itself, or rebuild it in the other process."""


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
    not answer, a timeout, or tables of another schema version.

    ``permanent`` is True when the server refused the statement itself (a constraint, bad data):
    sending the same statement again will fail again, unlike a timeout or a lost connection."""

    permanent: bool = False
