"""A separate process of the fleet tests (and benchmark): ``python tests/fleet/fleet_worker.py ROLE ...``.

Roles:
  reserve URL BUDGET N THREADS SEED   N reservations from THREADS threads at once; each settles a
                                      real cost at most its hold (or cancels); prints a JSON report
  hold URL BUDGET K AMOUNT LEASE_S     hold K reservations, print "held", then sleep until killed
  replica URL HISTORY FRESH            a router over the shared history; reads commands on stdin:
                                      "record MODEL CORRECT QUESTION", "estimate QUESTION",
                                      "wait N_OUTCOMES", "quit"; answers one JSON line each
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared fixtures (conftest)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's packages

from scope_shared import BudgetExceeded, History, Ledger, Router  # noqa: E402


def reserve(url: str, budget: str, n: int, threads: int, seed: int) -> None:
    ledger = Ledger.connect(url, budget)
    rng = random.Random(seed)
    plan = [(rng.choice([0.0013, 0.0021, 0.0034]), rng.random()) for _ in range(n)]
    lock = threading.Lock()
    report: dict = {"settled": [], "refused": 0, "cancelled": 0}
    start = threading.Barrier(threads)

    def work(part: list[tuple[float, float]]) -> None:
        start.wait()
        for hold, u in part:
            try:
                r = ledger.reserve(hold)
            except BudgetExceeded:
                with lock:
                    report["refused"] += 1
                continue
            if u < 0.1:
                r.cancel()
                with lock:
                    report["cancelled"] += 1
                continue
            cost = round(hold * u, 7)  # a real cost within what was held
            r.settle(cost, model="m")
            with lock:
                report["settled"].append(repr(cost))

    ts = [threading.Thread(target=work, args=(plan[i::threads],)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    report["seconds"] = time.perf_counter() - t0
    ledger.close()
    print(json.dumps(report), flush=True)


def hold(url: str, budget: str, k: int, amount: float, lease_s: float) -> None:
    ledger = Ledger.connect(url, budget, lease_s=lease_s)
    holds = [ledger.reserve(amount) for _ in range(k)]
    print("held", len(holds), flush=True)
    while True:
        time.sleep(3600)


def replica(url: str, history: str, fresh: bool) -> None:
    from conftest import toy_embedder

    h = History.connect(url, history, fresh_reads=fresh)
    router = Router(h.cards.values(), h, embedder=toy_embedder())
    print(json.dumps({"ready": True, "outcomes": h.n_records}), flush=True)
    for line in sys.stdin:
        cmd, _, rest = line.strip().partition(" ")
        if cmd == "record":
            model, correct, question = rest.split(" ", 2)
            router.record_outcome(question, model, float(correct), output_tokens=20)
            out: dict = {"outcomes": h.n_records}
        elif cmd == "estimate":
            d = router.route(rest)
            out = {"model": d.model, "p": {m: e.p_correct for m, e in d.estimates.items()}, "outcomes": h.n_records}
        elif cmd == "wait":
            out = {"arrived": h.wait_for_outcomes(int(rest), timeout_s=60), "outcomes": h.n_records}
        else:
            break
        print(json.dumps(out), flush=True)
    h.close()


if __name__ == "__main__":
    role, *a = sys.argv[1:]
    if role == "reserve":
        reserve(a[0], a[1], int(a[2]), int(a[3]), int(a[4]))
    elif role == "hold":
        hold(a[0], a[1], int(a[2]), float(a[3]), float(a[4]))
    elif role == "replica":
        replica(a[0], a[1], a[2] == "1")
    else:
        raise SystemExit(f"unknown role {role!r}")
