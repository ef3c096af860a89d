"""Many processes on one store and one feedback log, and crashes in the middle.

Each case runs real worker processes (`probe_worker`) and judges what is on disk afterwards:

- concurrent saves: every save either succeeds or fails cleanly, the store always loads, and
  every save that reported success is still there (no acknowledged outcome lost);
- concurrent appends to one feedback log: after one process saves and a fresh one reloads, every
  acknowledged outcome is there exactly once;
- loads while another process saves never fail;
- a log restored from an older backup still yields the records written after the restore;
- SIGKILL during saves always leaves a loadable store, and the next save sweeps the temporaries.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import CARDS, toy_embedder, toy_history
from probe_common import HERE, Case, Verdict, fail, lost, ok

from scope_shared import History, Router

GROUP = "concurrency"
WORKER = HERE / "probe_worker.py"


class Worker:
    """One worker process; ``lines()`` reads its JSON lines."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"worker died: {err[-600:]}")
        return json.loads(line)

    def finish(self) -> dict[str, Any]:
        out = self.read()
        self.proc.wait(timeout=600)
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()


def _run_together(workers: list[Worker], go: Path) -> list[dict[str, Any]]:
    """Start the workers at one moment (once all are ready) and collect their results."""
    try:
        for w in workers:
            assert w.read().get("ready")
        go.touch()
        return [w.finish() for w in workers]
    finally:
        for w in workers:
            w.kill()


def concurrent_saves(tmp: Path, procs: int = 3, items: int = 20) -> Verdict:
    store = tmp / "store"
    toy_history(per_topic=4).save(store)
    go = tmp / "go"
    results = _run_together([Worker("save", str(store), f"p{i}", str(items), str(go)) for i in range(procs)], go)
    if any(not r["saved"] and not r["library_error"] for r in results):
        return fail("a save failed with a raw error: " + "; ".join(r["error"] for r in results if not r["saved"]))
    try:
        final = History.load(store)
    except Exception as exc:  # noqa: BLE001
        return lost(f"the store no longer loads after concurrent saves: {type(exc).__name__}: {str(exc)[:120]}")
    saved = [r for r in results if r["saved"]]
    if not saved:
        return fail("no save succeeded")
    missing = sum(1 for r in saved for t in r["items"] if t not in final)
    if missing:
        return lost(f"{len(saved)} of {procs} saves reported success; {missing} of their questions are gone")
    return ok(f"{len(saved)} of {procs} saves succeeded, the others failed cleanly")


def shared_log(tmp: Path, procs: int = 2, records: int = 150, split_s: float = 0.0) -> Verdict:
    """``procs`` processes append to one log; the first saves its history mid-way; a fresh
    process reloads that store and replays the log: every acknowledged outcome, exactly once."""
    store, log, go = tmp / "store", tmp / "feedback.log", tmp / "go"
    toy_history(per_topic=4).save(store)
    workers = [
        Worker("record", str(log), str(store), f"p{i}", str(records), str(go), str(store) if i == 0 else "-",
               str(split_s if i == 0 else 0.0))
        for i in range(procs)
    ]
    results = _run_together(workers, go)
    errors = [e for r in results for e in r["errors"]]
    if errors:
        return fail(f"record_outcome raised: {errors[0]}")
    if results[0]["saved"] is not True:
        return fail(f"the save failed: {results[0]['saved']}")
    acked = [q for r in results for q in r["acked"]]
    h = History.load(store)
    h.attach_log(log)
    counts = _feedback_counts(h)
    missing = sum(1 for q in acked if counts.get(q, 0) == 0)
    twice = sum(1 for q in acked if counts.get(q, 0) > 1)
    if missing:
        return lost(f"{len(acked) - missing} of {len(acked)} fsynced outcomes came back")
    if twice:
        return fail(f"{twice} outcomes counted twice")
    return ok(f"all {len(acked)} acknowledged outcomes, once each")


def _feedback_counts(h: History) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in h.records:
        if rec.outcome.source == "feedback":
            t = h.text(rec.question_id)
            counts[t] = counts.get(t, 0) + 1
    return counts


def loads_during_saves(tmp: Path, seconds: float = 3.0, loaders: int = 2) -> Verdict:
    store, stop = tmp / "store", tmp / "stop"
    toy_history(per_topic=4).save(store)
    workers = [Worker("saver", str(store), str(stop))] + [Worker("loader", str(store), str(stop)) for _ in range(loaders)]
    try:
        for w in workers:
            assert w.read().get("ready")
        time.sleep(seconds)
        stop.touch()
        results = [w.finish() for w in workers]
    finally:
        for w in workers:
            w.kill()
    saves = results[0]["saves"]
    loads = sum(r["loads"] for r in results[1:])
    failures = [f for r in results[1:] for f in r["failures"]]
    n_failed = sum(r["n_failures"] for r in results[1:])
    if n_failed:
        return fail(f"{n_failed} of {loads} loads failed during {saves} saves, e.g. {failures[0]}")
    if saves == 0 or loads == 0:
        return fail(f"nothing overlapped ({saves} saves, {loads} loads)")
    return ok(f"{loads} loads during {saves} saves, none failed")


def restored_log(tmp: Path) -> Verdict:
    """A log restored from an older backup: records appended after the restore must replay."""
    store, log = tmp / "store", tmp / "feedback.log"
    toy_history(per_topic=4).save(store)
    r = Router(CARDS, History.load(store), embedder=toy_embedder(), feedback_log=log)
    for i in range(5):
        r.record_outcome(f"code question before the backup {i}", "mid", 1.0)
    shutil.copy(log, tmp / "backup.log")
    for i in range(5):
        r.record_outcome(f"code question after the backup {i}", "mid", 1.0)
    r.history.save(store)
    r.history.detach_log()
    shutil.copy(tmp / "backup.log", log)  # the restore
    r2 = Router(CARDS, History.load(store), embedder=toy_embedder(), feedback_log=log)
    new = [f"code question after the restore {i}" for i in range(3)]
    for q in new:
        r2.record_outcome(q, "mid", 0.0)
    r2.history.detach_log()
    h = History.load(store)
    h.attach_log(log)
    counts = _feedback_counts(h)
    missing = [q for q in new if counts.get(q, 0) != 1]
    if missing:
        return lost(f"{len(missing)} of {len(new)} outcomes recorded after the restore are skipped on replay")
    return ok()


def killed_saves(tmp: Path, kills: int = 10, seed: int = 0) -> Verdict:
    """SIGKILL a process that saves in a loop, at random moments: the store always loads (old or
    new generation), and the next save sweeps the temporaries the killed saves left."""
    rng = random.Random(seed)
    store = tmp / "store"
    toy_history(per_topic=4).save(store)
    for k in range(kills):
        stop = tmp / f"stop{k}"
        w = Worker("saver", str(store), str(stop))
        try:
            assert w.read().get("ready")
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            w.kill()
        try:
            History.load(store)
        except Exception as exc:  # noqa: BLE001
            return lost(f"after kill {k + 1} the store does not load: {type(exc).__name__}: {str(exc)[:120]}")
    left = _temp_files(store)
    h = History.load(store)
    h.save(store)
    after = _temp_files(store)
    if after:
        return fail(f"{len(after)} temporary files ({sum(p.stat().st_size for p in after)} bytes) left by killed saves are never swept")
    return ok(f"{kills} kills, the store always loaded; {len(left)} temporaries swept by the next save")


def _temp_files(d: Path) -> list[Path]:
    return [p for p in d.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def cases(trials: int = 1, procs: int = 3, records: int = 150, kills: int = 10, seconds: float = 3.0) -> list[Case]:
    rows: list[tuple[str, Callable[[Path], Verdict]]] = []
    for t in range(trials):
        rows += [
            (f"concurrent saves #{t}", lambda tmp: concurrent_saves(tmp, procs)),
            (f"shared feedback log #{t}", lambda tmp: shared_log(tmp, 2, records)),
            (f"shared feedback log, a writer stalls mid-record #{t}", lambda tmp: shared_log(tmp, 2, max(records // 30, 3), split_s=0.05)),
            (f"loads during saves #{t}", lambda tmp: loads_during_saves(tmp, seconds)),
            (f"log restored from a backup #{t}", restored_log),
            (f"kill -9 during saves #{t}", lambda tmp, t=t: killed_saves(tmp, kills, seed=t)),
        ]
    return [Case(GROUP, name, run) for name, run in rows]
