"""Fleet benchmark: the shared (PostgreSQL) ledger and history with 1, 4 and 16 processes.

Starts its own throw-away PostgreSQL server (tests/fixtures_postgres.py; fsync on, as in
production, unless --no-fsync) and measures, in one run:

- **reservations per second**: P processes each make ``--ops`` reserve+settle pairs on one shared
  budget (the worst case: every one queues on the same row lock, held until its commit is on
  disk), against the in-process `Ledger` driven by P threads in this process (the baseline; it
  cannot be shared between processes); the median of ``--repeats`` runs;
- **feedback propagation latency**: one process records ``--records`` outcomes in the shared
  history; P replica processes follow it; latency = from the start of the writer's ``add`` to the
  moment a replica's in-memory history holds the outcome, against the writer's own ``add`` time.

Medians (and p95) over all operations; JSON, a text table and a plot under benchmarks/results/.

    nice -n 10 python benchmarks/fleet.py                                   # fsync on, as deployed
    nice -n 10 python benchmarks/fleet.py --no-fsync --out benchmarks/results/fleet_nofsync
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

from scope_shared import History, Ledger, Outcome  # noqa: E402

DIM = 8


def _vector(i: int) -> np.ndarray:
    v = np.random.default_rng(i).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


# ---------------------------------------------------------------- worker processes
def reserve_worker(url: str, ops: int, barrier: mp.Barrier, out: mp.Queue) -> None:
    ledger = Ledger.connect(url, "bench")
    ledger.reserve(0.0).cancel()  # connect and warm up before the clock starts
    lat = []
    barrier.wait()
    start = time.time()
    for _ in range(ops):
        t = time.perf_counter()
        ledger.reserve(0.001).settle(0.0007, model="m")
        lat.append(time.perf_counter() - t)
    out.put({"start": start, "end": time.time(), "latency": lat})
    ledger.close()


def replica_worker(url: str, base: int, records: int, ready: mp.Barrier, out: mp.Queue) -> None:
    h = History.connect(url, "bench")
    ready.wait()
    seen = []
    for i in range(1, records + 1):
        if not h.wait_for_outcomes(base + i, timeout_s=120):
            break
        seen.append(time.time())
    out.put(seen)
    h.close()


# ---------------------------------------------------------------- measurements
def shared_reservations(url: str, procs: int, ops: int) -> dict:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=reserve_worker, args=(url, ops, barrier, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    results = [out.get(timeout=900) for _ in ps]
    for p in ps:
        p.join()
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    lat = [x for r in results for x in r["latency"]]
    return {"per_s": procs * ops / wall, "latency_ms_median": 1e3 * statistics.median(lat),
            "latency_ms_p95": 1e3 * float(np.percentile(lat, 95))}


def local_reservations(threads: int, ops: int) -> dict:
    ledger = Ledger(budget=1e9)
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(ops):
            ledger.reserve(0.001).settle(0.0007, model="m")

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return {"per_s": threads * ops / (time.perf_counter() - t0)}


def propagation(url: str, procs: int, records: int) -> dict:
    writer = History.connect(url, "bench", follow=False)
    writer.sync()
    base = writer.n_records
    ctx = mp.get_context("spawn")
    ready, out = ctx.Barrier(procs + 1), ctx.Queue()
    ps = [ctx.Process(target=replica_worker, args=(url, base, records, ready, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    ready.wait()
    sent, write_s = [], []
    for i in range(records):
        text = f"feedback question {procs}-{i}"
        t0 = time.time()
        writer.add(text, _vector(10_000 * procs + i), [Outcome(model="m", correct=1.0, source="feedback")])
        write_s.append(time.time() - t0)
        sent.append(t0)
        time.sleep(0.05)
    seen = [out.get(timeout=900) for _ in ps]
    for p in ps:
        p.join()
    writer.close()
    lat = [s - sent[i] for replica in seen for i, s in enumerate(replica)]
    arrived = sum(len(r) for r in seen)
    return {"latency_ms_median": 1e3 * statistics.median(lat), "latency_ms_p95": 1e3 * float(np.percentile(lat, 95)),
            "latency_ms_max": 1e3 * max(lat), "arrived": arrived, "expected": procs * records,
            "local_add_ms_median": 1e3 * statistics.median(write_s)}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (so its latencies belong to it)."""
    return sorted(runs, key=lambda r: r["per_s"])[len(runs) // 2]


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    procs = [r["procs"] for r in results["rows"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(procs, [r["shared_per_s"] for r in results["rows"]], "o-", label="shared ledger (PostgreSQL), processes")
    a.plot(procs, [r["local_per_s"] for r in results["rows"]], "s--", label="in-process Ledger, threads")
    a.set(xscale="log", yscale="log", xlabel="processes (threads for in-process)", ylabel="reserve+settle per second",
          title="Reservations on one budget")
    a.set_xticks(procs, [str(p) for p in procs])
    a.legend(fontsize=8)
    b.plot(procs, [r["propagation_ms_median"] for r in results["rows"]], "o-", label="median")
    b.plot(procs, [r["propagation_ms_p95"] for r in results["rows"]], "^--", label="p95")
    b.axhline(1000, color="grey", lw=0.8, ls=":", label="1 s (the target)")
    b.set(xscale="log", yscale="log", xlabel="replica processes", ylabel="ms until a replica has it",
          title="Feedback propagation")
    b.set_xticks(procs, [str(p) for p in procs])
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    from fixtures_postgres import TempPostgres, why_unavailable

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", default="1,4,16")
    ap.add_argument("--ops", type=int, default=200, help="reserve+settle pairs per process")
    ap.add_argument("--repeats", type=int, default=3, help="reservation runs per process count (median reported)")
    ap.add_argument("--records", type=int, default=30, help="feedback records per process count")
    ap.add_argument("--no-fsync", action="store_true", help="run the server with fsync=off")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fleet"))
    args = ap.parse_args()
    if why_unavailable():
        raise SystemExit(f"cannot run: {why_unavailable()}")
    procs = [int(p) for p in args.procs.split(",")]
    rows = []
    with TempPostgres(fsync=not args.no_fsync) as server:
        url = server.new_database()
        Ledger.connect(url, "bench", budget=1e9, mode="raise").close()
        seed = History.connect(url, "bench", dim=DIM, embedder_name="random", follow=False)
        seed.add("seed question", _vector(0), [Outcome(model="m", correct=1.0)])
        seed.close()
        for p in procs:
            shared = _median_run([shared_reservations(url, p, args.ops) for _ in range(args.repeats)])
            local = _median_run([local_reservations(p, args.ops) for _ in range(args.repeats)])
            prop = propagation(url, p, args.records)
            rows.append({"procs": p, "shared_per_s": shared["per_s"], "local_per_s": local["per_s"],
                         "ratio_shared_to_local": shared["per_s"] / local["per_s"],
                         "reserve_settle_ms_median": shared["latency_ms_median"],
                         "reserve_settle_ms_p95": shared["latency_ms_p95"],
                         "propagation_ms_median": prop["latency_ms_median"], "propagation_ms_p95": prop["latency_ms_p95"],
                         "propagation_ms_max": prop["latency_ms_max"], "arrived": prop["arrived"],
                         "expected": prop["expected"], "writer_add_ms_median": prop["local_add_ms_median"]})
            print(json.dumps(rows[-1]), flush=True)
    results = {"rows": rows, "ops_per_process": args.ops, "repeats": args.repeats, "records": args.records,
               "fsync": not args.no_fsync,
               "cpus": os.cpu_count(), "command": "python benchmarks/fleet.py " + " ".join(sys.argv[1:])}
    lines = [
        f"{'procs':>5} {'shared res/s':>12} {'in-proc res/s':>13} {'ratio':>7} {'res ms p50':>10} "
        f"{'prop ms p50':>11} {'prop ms p95':>11} {'prop ms max':>11} {'arrived':>9} {'add ms p50':>10}"
    ]
    for r in rows:
        lines.append(
            f"{r['procs']:>5} {r['shared_per_s']:>12.0f} {r['local_per_s']:>13.0f} {r['ratio_shared_to_local']:>7.4f} "
            f"{r['reserve_settle_ms_median']:>10.2f} {r['propagation_ms_median']:>11.1f} {r['propagation_ms_p95']:>11.1f} "
            f"{r['propagation_ms_max']:>11.1f} {r['arrived']:>4}/{r['expected']:<4} {r['writer_add_ms_median']:>10.2f}"
        )
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".txt").write_text(results["command"] + "\n" + table + "\n")
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out}.json, .txt, .png")


if __name__ == "__main__":
    main()
