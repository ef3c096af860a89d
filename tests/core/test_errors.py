"""The error kinds: input errors are ValueErrors, runtime failures RuntimeErrors, a budget stop neither."""

from __future__ import annotations

import importlib
import pickle
import pkgutil


import langchain_scope
import llamaindex_scope
import scope_shared
from scope_shared import AllCandidatesFailed, BudgetExceeded, ScopeError, ScopeInputError, ScopeRuntimeError
from scope_shared.errors import InvalidQueryError, ReservationError, UnknownModelError


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


def test_every_raise_names_a_concrete_error_class():
    """A reader sees what went wrong from the class: no ``raise ScopeError(...)``, nor of its two
    kind bases; every ``raise X(...)`` of ours names a concrete subclass."""
    import ast
    from pathlib import Path

    bases = {"ScopeError", "ScopeInputError", "ScopeRuntimeError"}
    found, bad = 0, []
    for package in (scope_shared, langchain_scope, llamaindex_scope):
        for path in Path(package.__path__[0]).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    name = getattr(node.exc.func, "id", None) or getattr(node.exc.func, "attr", None)
                    found += name is not None and name.endswith(("Error", "Failed", "Exceeded"))
                    if name in bases:
                        bad.append(f"{path}:{node.lineno}")
                if isinstance(node, ast.arg) or not isinstance(node, ast.FunctionDef):
                    continue
                for default in node.args.defaults + node.args.kw_defaults:  # e.g. error=ScopeError
                    if isinstance(default, ast.Name) and default.id in bases:
                        bad.append(f"{path.name}:{node.lineno} (default)")
    assert found > 200, found  # the walk saw the library's raises
    assert not bad, f"raise a concrete subclass of ScopeInputError/ScopeRuntimeError at: {bad}"


def test_the_bases_are_only_bases():
    err = ScopeError("x")  # constructible (to catch or subclass) but no longer turned into an input error
    assert type(err) is ScopeError and not isinstance(err, ValueError)
    assert ScopeError.__new__ is Exception.__new__


def test_the_specific_classes_keep_their_kind():
    from scope_shared import errors

    inputs = ("InvalidBudgetError", "InvalidSettingError", "InvalidComponentError", "NoCandidatesError",
              "NoToolCapableCandidate", "ToolCallError", "FeedbackError", "HistoryDataError", "EmbedderError", "DataSetError",
              "EvaluationError", "UnpicklableError", "InvalidUsageError")
    for name in inputs:
        cls = getattr(errors, name)
        assert issubclass(cls, ScopeInputError) and issubclass(cls, ValueError), name
        assert cls.__doc__ and cls.__module__ == "scope_shared.errors", name
        err = cls("why")
        assert type(pickle.loads(pickle.dumps(err))) is cls and str(err) == "why"
    # a ledger's usage figures are budget settings, not knobs
    assert issubclass(errors.InvalidUsageError, errors.InvalidBudgetError)
    assert not issubclass(errors.InvalidBudgetError, errors.InvalidKnobError)
    assert not issubclass(errors.InvalidSettingError, errors.InvalidKnobError)


def test_both_integrations_raise_one_class_for_one_situation():
    from scope_shared import errors

    assert langchain_scope.NoCandidatesError is errors.NoCandidatesError
    assert langchain_scope.NoToolCapableCandidate is errors.NoToolCapableCandidate
    assert issubclass(errors.NoToolCapableCandidate, errors.NoCandidatesError)
    from langchain_scope.structured import NoStructuredOutputCandidate

    assert issubclass(NoStructuredOutputCandidate, errors.NoCandidatesError)


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
