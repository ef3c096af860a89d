"""Live feedback log: fsynced appends, replay, exactly-once folding, concurrency, crashes, corruption."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CARDS, DIM, toy_embedder, toy_history

from scope_shared import History, Outcome, Router, ScopeError
from scope_shared.errors import HistoryStoreError
from scope_shared.history.feedback_log import FeedbackLog, FeedbackLogWarning

ROOT = Path(__file__).resolve().parents[2]


def _router(log: Path) -> Router:
    return Router(CARDS, toy_history(), embedder=toy_embedder(), feedback_log=log)


def test_recorded_outcomes_survive_a_restart_and_are_folded_in(tmp_path):
    log = tmp_path / "feedback.log"
    r = _router(log)
    before = toy_history()
    r.record_outcome("math question about primes", "cheap", 1.0, output_tokens=42, input_tokens=7)
    r.record_outcome("math question about primes", "cheap", 0.0, output_tokens=10)
    r.record_outcome("code question about loops", "mid", 0.5)
    r2 = _router(log)  # a fresh process would do exactly this
    h = r2.history
    assert h.n_records == before.n_records + 3
    qid = h.question_id("math question about primes")
    arr = h.model_arrays("cheap")
    i = int(np.searchsorted(arr.ids, qid))
    assert arr.ids[i] == qid and arr.scores[i] == pytest.approx(0.5)
    assert arr.tokens[i] == pytest.approx(np.expm1((np.log1p(42) + np.log1p(10)) / 2), rel=1e-5)
    last = h.records[-1].outcome
    assert last.model == "mid" and last.correct == 0.5 and last.source == "feedback"


def test_saved_history_does_not_count_log_records_twice(tmp_path):
    log = tmp_path / "feedback.log"
    r = _router(log)
    for i in range(5):
        r.record_outcome(f"trivia question {i} about rivers", "cheap", 1.0)
    n = r.history.n_records
    r.history.save(tmp_path / "store")
    r.record_outcome("trivia question after the save", "cheap", 0.0)
    loaded = History.load(tmp_path / "store")
    assert loaded.n_records == n
    report = loaded.attach_log(log)
    assert report.applied == 1 and report.skipped == 0  # only the record after the save
    assert loaded.n_records == n + 1


def test_threads_and_asyncio_tasks_recording_at_once_lose_nothing(tmp_path):
    log = tmp_path / "feedback.log"
    r = _router(log)
    base = r.history.n_records

    def worker(t: int) -> None:
        for i in range(20):
            r.record_outcome(f"math question from thread {t} #{i}", "strong", 1.0, output_tokens=i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()

    async def many() -> None:
        async def one(i: int) -> None:
            await asyncio.to_thread(r.record_outcome, f"code question from task {i}", "mid", 0.0)

        await asyncio.gather(*(one(i) for i in range(60)))

    asyncio.run(many())
    for th in threads:
        th.join()
    assert r.history.n_records == base + 180
    fresh = _router(log).history
    assert fresh.n_records == base + 180
    texts = {fresh.text(rec.question_id) for rec in list(fresh.records)[base:]}
    assert len(texts) == 180


CHILD = r"""
import sys, time, numpy as np
import scope_shared.history.feedback_log as fl
from scope_shared import History, Outcome
stall_after = int(sys.argv[2])  # >= 0: stall inside the write of that record (after its first half)
writes = [0]

def between_halves():
    writes[0] += 1
    if writes[0] > stall_after:
        print("mid", flush=True)
        time.sleep(600)

if stall_after >= 0:
    fl._BETWEEN_HALVES = between_halves
h = History(8)
h.attach_log(sys.argv[1])
i = 0
while True:
    v = np.random.default_rng(i).standard_normal(8)
    h.add(f"question {i} " + "x" * (i % 97), v, [Outcome(model="m", correct=float(i % 2), output_tokens=i)])
    print(i, flush=True)
    i += 1
"""


def _kill_child_after(log: Path, acks: int, mid_write: bool) -> int:
    """Run a writer; SIGKILL it once ``acks`` records are acknowledged (with ``mid_write``: once it
    is inside the next record's write, which it announces; no sleeps, so load cannot move the kill)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(log), str(acks if mid_write else -1)], stdout=subprocess.PIPE, env=env, text=True
    )
    got = -1
    try:
        assert proc.stdout is not None
        while got < acks - 1:
            line = proc.stdout.readline()
            assert line, "child died early"
            got = int(line)
        if mid_write:
            assert proc.stdout.readline() == "mid\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return got + 1


@pytest.mark.slow
@pytest.mark.parametrize("mid_write", [True, False])
def test_sigkill_mid_write_loses_at_most_that_record(tmp_path, mid_write):
    log = tmp_path / "feedback.log"
    acked = _kill_child_after(log, 5, mid_write)
    h = History(8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = h.attach_log(log)
    assert acked <= report.applied <= acked + 1  # every acknowledged record is there
    assert report.skipped <= 1
    if mid_write:  # killed inside the split write: the torn tail is reported, then cut before appending
        assert report.applied == acked
        assert report.skipped == 1 and any(issubclass(w.category, FeedbackLogWarning) for w in caught)
    for rec in h.records:
        assert rec.outcome.output_tokens == int(h.text(rec.question_id).split()[1])
    with warnings.catch_warnings(record=True) as cut:
        warnings.simplefilter("always")
        h.add("after the crash", np.ones(8), [Outcome(model="m", correct=1.0)])
    assert bool(cut) == (report.skipped == 1)  # a torn tail is cut (and said so) before appending
    h2 = History(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the store is clean again: no warning
        report2 = h2.attach_log(log)
    assert report2.skipped == 0 and report2.applied == report.applied + 1


def test_corrupt_record_in_the_middle_is_skipped_and_reported(tmp_path):
    log = tmp_path / "feedback.log"
    h = History(DIM)
    h.attach_log(log)
    emb = toy_embedder()
    for i in range(4):
        h.add(f"math item {i}", emb.embed_one(f"math item {i}"), [Outcome(model="m", correct=1.0)])
    h.detach_log()
    lines = log.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"math item 1", b"math itex 1")  # bit rot inside a payload
    log.write_bytes(b"\n".join(lines))
    h2 = History(DIM)
    with pytest.warns(FeedbackLogWarning, match="skipped 1"):
        report = h2.attach_log(log)
    assert report.applied == 3 and report.skipped == 1 and "checksum" in report.problems[0]
    assert "math item 1" not in h2 and "math item 3" in h2


def test_truncated_tail_at_every_byte_is_never_fatal(tmp_path):
    log = tmp_path / "feedback.log"
    h = History(DIM)
    h.attach_log(log)
    for i in range(2):
        h.add(f"trivia item {i}", np.eye(DIM)[i], [Outcome(model="m", correct=0.0)])
    h.detach_log()
    data = log.read_bytes()
    header_end = data.index(b"\n") + 1
    second = data.index(b"\n", header_end) + 1
    for cut in range(second, len(data), 7):
        log.write_bytes(data[:cut])
        h2 = History(DIM)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = h2.attach_log(log)
        assert report.applied == 1 + (cut == len(data))
        h2.detach_log()


def test_bad_log_files_raise_the_library_error(tmp_path):
    bad = tmp_path / "not-a-log"
    bad.write_text("hello\n")
    with pytest.raises(HistoryStoreError, match="not a SCOPE feedback log"):
        History(DIM).attach_log(bad)
    FeedbackLog(tmp_path / "l8", DIM)
    with pytest.raises(HistoryStoreError, match="holds 8-d"):
        History(DIM + 1).attach_log(tmp_path / "l8")
    h = History(DIM)
    h.attach_log(tmp_path / "l8")
    with pytest.raises(ScopeError, match="already attached"):
        h.attach_log(tmp_path / "l8")
    size = (tmp_path / "l8").stat().st_size
    with pytest.raises(ScopeError):
        h.add("", np.ones(DIM), [])
    with pytest.raises(ScopeError):
        h.add("ok text", np.full(DIM, np.nan), [])
    with pytest.raises(ScopeError):
        h.add("ok text", np.ones(DIM), [{"model": "m", "correct": 2.0}])
    assert (tmp_path / "l8").stat().st_size == size  # a failed call writes nothing
