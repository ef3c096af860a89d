"""The robustness probe's shared pieces: a case, its verdict, and the checks most cases make.

The probe (`probe_bad_input`, `probe_store`, `probe_concurrency`, `probe_reasoning`) is a table of
cases over the public API only, so the same table runs on any checkout: the tests in ``tests/``
run it in-process (fast), ``benchmarks/robustness_probe.py`` runs a longer version of it in child
processes (a case that kills the interpreter, e.g. faiss's SIGSEGV, is recorded as a crash) and
prints tried / passed / data-loss, so main's code and a branch can be compared.

A case returns a `Verdict`: ``pass``, ``fail`` (wrong error type, state changed by a failed call,
crash), ``data-loss`` (an acknowledged outcome, a saved store or a charged cost is gone), ``hang``
(a call that did not return within its deadline) or ``raw-error`` (an exception that is not the
library's own, e.g. ``MemoryError``, or an allocation far above what the input holds), with a detail.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
for _folder in (HERE, HERE.parent):  # the probes, and the shared fixtures in tests/
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from scope_shared import History, ScopeError  # noqa: E402

PASS, FAIL, LOSS, HANG, RAW = "pass", "fail", "data-loss", "hang", "raw-error"


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == PASS


@dataclass(frozen=True)
class Case:
    """One probe case: ``run(scratch_dir) -> Verdict``. ``time_limit_s``: the benchmark (never a
    test) also fails the case when it takes longer than that."""

    group: str
    name: str
    run: Callable[[Path], Verdict]
    time_limit_s: float | None = None

    @property
    def id(self) -> str:
        return f"{self.group}/{self.name}"


def ok(detail: str = "") -> Verdict:
    return Verdict(PASS, detail)


def fail(detail: str) -> Verdict:
    return Verdict(FAIL, detail)


def lost(detail: str) -> Verdict:
    return Verdict(LOSS, detail)


def hung(detail: str) -> Verdict:
    return Verdict(HANG, detail)


def raw(detail: str) -> Verdict:
    return Verdict(RAW, detail)


def raised(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:160]}"


def snapshot(h: History) -> tuple:
    """Everything a failed call must leave unchanged."""
    return (
        len(h), h.n_records, tuple(h.models), h.embeddings.tobytes(), dict(h.feedback_applied),
        tuple((m, h.model_arrays(m).ids.tobytes(), h.model_arrays(m).scores.tobytes(),
               h.model_arrays(m).tokens.tobytes()) for m in h.models),
    )


def expect_error(fn: Callable[[], Any], error: type[BaseException] = ScopeError, state: Callable[[], Any] | None = None) -> Verdict:
    """``fn()`` must raise ``error`` (the library's own type) and leave ``state()`` unchanged."""
    before = state() if state is not None else None
    try:
        fn()
    except error as exc:
        if state is not None and state() != before:
            return fail(f"raised {type(exc).__name__} but changed the state")
        return ok(type(exc).__name__)
    except BaseException as exc:  # noqa: BLE001 - the verdict is the point
        if isinstance(exc, KeyboardInterrupt):
            raise
        return fail(f"raised {raised(exc)}")
    if state is not None and state() != before:
        return fail("accepted the bad input and changed the state")
    return fail("accepted the bad input")


def run_case(case: Case) -> Verdict:
    """Run one case in a fresh scratch folder; an unexpected exception is a failed case."""
    with tempfile.TemporaryDirectory(prefix="scope-probe-") as tmp:
        try:
            return case.run(Path(tmp))
        except Exception as exc:  # noqa: BLE001
            return fail(f"case raised {raised(exc)}")


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def guarded(
    fn: Callable[[], Any], error: type[BaseException], *, deadline_s: float = 20.0, max_alloc_mb: float | None = None,
    unblock: Callable[[], None] | None = None, accept: Callable[[Any], Verdict] | None = None,
) -> Verdict:
    """Run ``fn()`` (a load of untrusted input) in a thread: it must raise ``error`` (or, where
    ``accept`` is given, return what ``accept`` passes) within ``deadline_s`` seconds, allocating at
    most ``max_alloc_mb`` MB (Python and numpy allocations, traced). A call still running at the
    deadline is a hang (``unblock()`` then frees it, e.g. by opening the FIFO it waits on); an
    exception of another type, or an allocation above the limit, is a raw error."""
    import threading
    import tracemalloc

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["exc"] = exc

    tracing = max_alloc_mb is not None and not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start()
        tracemalloc.reset_peak()
    try:
        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(deadline_s)
        if t.is_alive():
            if unblock is not None:
                unblock()
                t.join(5)
            return hung(f"still running after {deadline_s:.0f} s")
        peak = tracemalloc.get_traced_memory()[1] / 1e6 if tracing else 0.0
    finally:
        if tracing:
            tracemalloc.stop()
    exc = box.get("exc")
    if max_alloc_mb is not None and peak > max_alloc_mb:
        what = f"raised {type(exc).__name__}" if exc is not None else "returned"
        return raw(f"allocated {peak:.0f} MB (limit {max_alloc_mb:.0f}) and {what}")
    if exc is None:
        return accept(box.get("value")) if accept is not None else fail("accepted the bad input")
    if isinstance(exc, error):
        return ok(f"{type(exc).__name__} ({peak:.0f} MB peak)")
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    return raw(f"raised {raised(exc)}")
