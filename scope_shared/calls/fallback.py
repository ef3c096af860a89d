"""Which errors move a routed call on to the next candidate, and the error when none answered.

Like ``with_fallbacks(exceptions_to_handle=...)``: a candidate that raises one of ``fallback_on``
(default: any ``Exception``) hands over to the next-ranked one; any other error (an auth error or a
bad request, if you leave them out) propagates at once, as the provider raised it. Cancellation,
interrupts and a budget stop (``BaseException`` but not ``Exception``) never move on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scope_shared.errors import AllCandidatesFailed, InvalidSettingError

FallbackOn = tuple[type[BaseException], ...]
DEFAULT_FALLBACK_ON: FallbackOn = (Exception,)


def check_fallback_on(value: Any) -> FallbackOn:
    """``value`` as a tuple of exception classes (a single class is accepted), or `InvalidSettingError`."""
    items = (value,) if isinstance(value, type) else value
    if not isinstance(items, (tuple, list)) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in items
    ):
        raise InvalidSettingError(f"fallback_on must be exception classes, got {value!r}")
    return tuple(items)


def moves_on(error: BaseException, fallback_on: FallbackOn) -> bool:
    """Whether ``error`` hands the call to the next candidate."""
    return isinstance(error, Exception) and isinstance(error, fallback_on)


def all_failed_error(errors: Sequence[tuple[str, BaseException]]) -> AllCandidatesFailed:
    """`AllCandidatesFailed` listing every attempt, its ``__cause__`` the last provider exception."""
    tried = "; ".join(f"{model}: {type(exc).__name__}: {exc}" for model, exc in errors)
    err = AllCandidatesFailed(f"every candidate failed ({tried})", list(errors))
    if errors:
        err.__cause__ = errors[-1][1]
    return err
