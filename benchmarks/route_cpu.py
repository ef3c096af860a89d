"""CPU seconds of a fresh ``scope route "QUESTION"`` process, per history (so per embedder), same run.

    nice -n 10 python benchmarks/route_cpu.py --history pack --history routing=DIR --runs 5

Each run is a new ``python -m scope_shared.cli route`` process; its user + system CPU time comes from
the kernel's accounting of the finished child (``getrusage(RUSAGE_CHILDREN)``), so a loaded machine
stretches wall time but hardly the CPU figure. Runs alternate between the histories (the first is the
baseline of the ratios); files are warm in the page cache after the first run of each (the
interpreter and packages are loaded anew each time: "cold start" of the process, not of the disk).
``pack`` is the bundled anchor pack (no ``--history``). Prints and writes
``benchmarks/results/route_cpu.json`` (medians, every run, load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

QUESTION = "What is the capital of Australia?"
RESULTS = Path(__file__).resolve().parent / "results"


def cpu_of(cmd: list[str]) -> float:
    """User + system CPU seconds of one child process run to completion (it must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--history", action="append", required=True,
                    help="LABEL=DIR (a history folder or pack), or 'pack' for the bundled pack; repeat")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS / "route_cpu.json")
    args = ap.parse_args(argv)
    variants = {}
    for h in args.history:
        label, _, path = h.partition("=")
        variants[label] = [] if h == "pack" else ["--history", path or label]
    load_start = os.getloadavg()
    runs: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(args.runs):
        for label, extra in variants.items():
            runs[label].append(cpu_of([sys.executable, "-m", "scope_shared.cli", "route", QUESTION, *extra]))
    load_end = os.getloadavg()
    base = statistics.median(runs[next(iter(runs))])
    rows = {label: {"median_cpu_s": statistics.median(xs), "runs_cpu_s": xs,
                    "ratio_to_first": statistics.median(xs) / base} for label, xs in runs.items()}
    for label, r in rows.items():
        print(f"  scope route, {label:<10} median {r['median_cpu_s']:.2f} CPU-s over {args.runs} fresh processes "
              f"({r['ratio_to_first']:.2f}x {next(iter(rows))}); runs {[round(x, 2) for x in r['runs_cpu_s']]}")
    print(f"  load average {load_start[0]:.1f} before, {load_end[0]:.1f} after, on {os.cpu_count()} CPUs")
    out = {"question": QUESTION, "variants": rows, "load_avg_start": load_start, "load_avg_end": load_end,
           "cpus": os.cpu_count()}
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
