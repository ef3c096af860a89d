"""A worker process of the concurrency probe (`probe_concurrency`): ``python probe_worker.py CMD ...``.

Commands (each prints JSON lines on stdout; ``ready`` when set up, then its result):

- ``save``  STORE TAG N GO: load STORE, add N new questions tagged TAG, wait for file GO, save.
- ``record`` LOG STORE TAG M GO SAVE_TO SPLIT_S: a router over STORE (``-``: a fresh toy history)
  with feedback log LOG records M outcomes once GO exists; SAVE_TO (``-``: none) is where its
  history is saved afterwards; SPLIT_S > 0 makes every log write pause half-way that long.
- ``saver`` STORE STOP: save a growing history into STORE until file STOP exists.
- ``loader`` STORE STOP: load STORE until file STOP exists; report every failure.

Only the public API (plus the feedback log's test hook, whichever the checkout has) is used, so
the worker runs against any checkout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the probes, and the shared fixtures in tests/

from conftest import CARDS, toy_embedder, toy_history  # noqa: E402

from scope_shared import History, Outcome, Router  # noqa: E402


def say(**obj: object) -> None:
    print(json.dumps(obj), flush=True)


def wait_for(path: Path, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.002)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:200]}"


def cmd_save(store: str, tag: str, n: str, go: str) -> None:
    h = History.load(store)
    emb = toy_embedder()
    items = [f"math item {tag} #{i}" for i in range(int(n))]
    for t in items:
        h.add(t, emb.embed_one(t), [Outcome(model="cheap", correct=1.0)])
    say(ready=True)
    wait_for(Path(go))
    try:
        h.save(store)
    except BaseException as exc:  # noqa: BLE001 - the parent judges
        say(saved=False, error=_error(exc), library_error=type(exc).__module__.startswith("scope_shared"))
        return
    say(saved=True, items=items)


def _split_writes(seconds: float) -> None:
    import scope_shared.history.feedback_log as fl

    if hasattr(fl, "_BETWEEN_HALVES"):
        fl._BETWEEN_HALVES = lambda: time.sleep(seconds)
    else:  # the hook's older form
        fl._SPLIT_WRITE_DELAY = seconds


def cmd_record(log: str, store: str, tag: str, m: str, go: str, save_to: str, split_s: str) -> None:
    if float(split_s) > 0:
        _split_writes(float(split_s))
    history = toy_history(per_topic=4) if store == "-" else History.load(store)
    router = Router(CARDS, history, embedder=toy_embedder(), feedback_log=log)
    say(ready=True)
    wait_for(Path(go))
    acked, errors = [], []
    for i in range(int(m)):
        q = f"trivia question {tag} #{i}"
        try:
            router.record_outcome(q, "cheap", float(i % 2), output_tokens=i + 1)
            acked.append(q)
        except BaseException as exc:  # noqa: BLE001
            errors.append(_error(exc))
    saved = None
    if save_to != "-":
        try:
            router.history.save(save_to)
            saved = True
        except BaseException as exc:  # noqa: BLE001
            saved = _error(exc)
    say(acked=acked, errors=errors[:5], saved=saved)


def cmd_saver(store: str, stop: str) -> None:
    h = toy_history(per_topic=4)
    emb = toy_embedder()
    saves = 0
    say(ready=True)
    while not Path(stop).exists():
        t = f"code item {saves}"
        h.add(t, emb.embed_one(t), [Outcome(model="mid", correct=1.0)])
        h.save(store)
        saves += 1
    say(saves=saves)


def cmd_loader(store: str, stop: str) -> None:
    loads, failures = 0, []
    say(ready=True)
    while not Path(stop).exists():
        try:
            History.load(store)
        except BaseException as exc:  # noqa: BLE001
            failures.append(_error(exc))
        loads += 1
    say(loads=loads, failures=failures[:20], n_failures=len(failures))


if __name__ == "__main__":
    {"save": cmd_save, "record": cmd_record, "saver": cmd_saver, "loader": cmd_loader}[sys.argv[1]](*sys.argv[2:])
