"""Argument checks of the `Router`'s public methods, so bad input fails at the door with the
library's own errors (not an ``AttributeError`` from deep inside, or a pydantic error later)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scope_shared.errors import InvalidBudgetError, InvalidComponentError, InvalidSettingError
from scope_shared.estimators import Estimator


def check_budget_view(ledger: Any) -> None:
    """The router's ``ledger=`` is None or has what the router reads of a budget
    (`scope_shared.budget.base.BudgetView`). Turning a user's ledger argument (a ``Ledger``, nested
    budgets or a ``postgresql://`` URL) into one is `scope_shared.budget.nesting.check_ledger`'s job,
    a floor above; this only guards direct callers of `Router`."""
    if ledger is not None and not all(hasattr(type(ledger), a) for a in ("room", "check_fits", "enforce")):
        raise InvalidBudgetError(f"ledger must be a scope_shared.Ledger, got {type(ledger).__name__}")


def check_router_args(estimator: Any, token_counter: Any, default_output_tokens: Any) -> None:
    """The `Router`'s own arguments (the history is checked by ``as_history``, the knob by ``as_knob``)."""
    if estimator is not None and not isinstance(estimator, Estimator):
        raise InvalidComponentError(f"estimator must be a scope_shared.Estimator, got {type(estimator).__name__}")
    if token_counter is not None and not callable(token_counter):
        raise InvalidComponentError(f"token_counter must be callable (text -> token count), got {type(token_counter).__name__}")
    if (
        isinstance(default_output_tokens, bool)
        or not isinstance(default_output_tokens, (int, float))
        or not math.isfinite(default_output_tokens)
        or default_output_tokens <= 0
    ):
        raise InvalidSettingError(f"default_output_tokens must be a finite number > 0, got {default_output_tokens!r}")


def counted_tokens(count: Callable[[str], Any], queries: Sequence[str]) -> np.ndarray:
    """Input tokens of each query by ``count``; a count that is not a finite number >= 0 raises."""
    out = np.empty(len(queries), dtype=np.float64)
    for i, q in enumerate(queries):
        n = count(q)
        if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)) or not 0 <= float(n) < math.inf:
            raise InvalidComponentError(f"token counter returned {n!r} for query #{i}; expected a finite number >= 0")
        out[i] = float(n)
    return out
