"""The error kinds: input errors are ValueErrors, runtime failures RuntimeErrors, a budget stop neither."""

from __future__ import annotations

import importlib
import pickle
import pkgutil

import pytest

import langchain_scope
import llamaindex_scope
import scope_shared
from scope_shared import (
    AllCandidatesFailed,
    BudgetExceeded,
    InvalidQueryError,
    ReservationError,
    ScopeError,
    ScopeInputError,
    ScopeRuntimeError,
    UnknownModelError,
)


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def _import_everything() -> None:
    for package in (scope_shared, langchain_scope, llamaindex_scope):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional extra that is not installed
                continue


def test_every_library_error_is_an_input_error_or_a_runtime_failure():
    _import_everything()
    ours = [c for c in _all_subclasses(ScopeError) if c.__module__.split(".")[0] in
            ("scope_shared", "langchain_scope", "llamaindex_scope")]
    assert len(ours) >= 10
    for cls in ours:
        if cls in (ScopeInputError, ScopeRuntimeError):
            continue
        kinds = (issubclass(cls, ScopeInputError), issubclass(cls, ScopeRuntimeError))
        assert sum(kinds) == 1, f"{cls.__module__}.{cls.__name__}: derive from ScopeInputError or ScopeRuntimeError"


def test_a_bare_scope_error_is_an_input_error():
    err = ScopeError("bad input")
    assert isinstance(err, ScopeInputError) and isinstance(err, ValueError) and str(err) == "bad input"
    assert type(pickle.loads(pickle.dumps(err))) is ScopeInputError
    with pytest.raises(ValueError):
        raise ScopeError("still a ValueError")


def test_kinds():
    assert issubclass(InvalidQueryError, ValueError) and issubclass(UnknownModelError, KeyError)
    for runtime in (AllCandidatesFailed, ReservationError):
        assert issubclass(runtime, RuntimeError) and issubclass(runtime, ScopeError)
        assert not issubclass(runtime, ValueError)
    # a budget stop is not an Exception: `except Exception` (with_fallbacks, synthesizers) lets it through
    assert issubclass(BudgetExceeded, BaseException) and not issubclass(BudgetExceeded, Exception)
    stop = BudgetExceeded("spent", ledger="team", mode="end", needed=0.2, left=0.1)
    assert (stop.ledger, stop.mode, stop.needed, stop.left) == ("team", "end", 0.2, 0.1)


def test_all_candidates_failed_lists_every_error_and_chains_the_last():
    from scope_shared.calls.fallback import all_failed_error

    first, last = TimeoutError("slow"), ConnectionError("down")
    err = all_failed_error([("a", first), ("b", last)])
    assert err.errors == [("a", first), ("b", last)] and err.__cause__ is last
    assert "a: TimeoutError: slow" in str(err) and "b: ConnectionError: down" in str(err)
    assert scope_shared.AllCandidatesFailed is AllCandidatesFailed
