"""The robustness probe, long version: bad input, untrusted stores, many processes, adversarial
model output; run against any checkout, cases in child processes (a crash is a failed case).

    python benchmarks/robustness_probe.py                       # this checkout, label "branch"
    python benchmarks/robustness_probe.py --code /path/to/main --label main
    python benchmarks/robustness_probe.py --compare main branch # the before/after table
    python benchmarks/robustness_probe.py --compare main branch --save NAME   # ... also to results/NAME.txt

The case table lives in ``tests/probes/probe_*.py`` (the tests run it in-process, with fewer trials):
bad input, store files, many processes, adversarial model output, and (issue 22) hostile anchor
packs and store files (``pack``, ``store-files``), rows other clients write to the shared PostgreSQL
history (``postgres``), connection URLs of every form (``urls``), settles the shared ledger's
database refuses (``ledger``) and the onboarding spend cap (``onboarding``); the groups that need
PostgreSQL start their own throw-away server and are reported as not run where none can start.
Each child gets an address-space limit (``--memory-gib``), so a case that makes numpy allocate
hundreds of GB fails with ``MemoryError`` instead of waking the host's OOM killer; a case that
takes longer than ``--case-timeout`` seconds is killed and counts as a hang. Prints tried / passed /
failed / data-loss / hangs / raw errors per group and writes
``benchmarks/results/robustness_probe_<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PROBES = TESTS / "probes"
RESULTS = ROOT / "benchmarks" / "results"
GROUPS = ("bad-input", "store", "concurrency", "reasoning", "pack", "store-files", "postgres", "urls", "ledger", "onboarding")
STATUSES = ("pass", "fail", "data-loss", "hang", "raw-error")


def _load_cases(group: str, trials: int) -> list:
    sys.path[:0] = [str(PROBES), str(TESTS)]
    import probe_bad_input
    import probe_concurrency
    import probe_pack
    import probe_reasoning
    import probe_shared
    import probe_store

    return {
        "bad-input": probe_bad_input.cases,
        "store": probe_store.cases,
        "concurrency": lambda: probe_concurrency.cases(trials=trials, records=300, kills=20, seconds=5.0),
        "reasoning": probe_reasoning.cases,
        "pack": probe_pack.pack_cases,
        "store-files": probe_pack.store_cases,
        "postgres": probe_shared.postgres_cases,
        "urls": probe_shared.url_cases,
        "ledger": probe_shared.ledger_cases,
        "onboarding": probe_shared.onboarding_cases,
    }[group]()


def child(group: str, start: int, trials: int) -> None:
    """Run the group's cases from ``start`` on, one JSON line before and after each."""
    from probe_common import run_case

    try:
        cases = _load_cases(group, trials)
    except Exception as exc:  # noqa: BLE001 - e.g. no PostgreSQL here: the group is reported as not run
        print(json.dumps({"unavailable": f"{type(exc).__name__}: {exc}"}), flush=True)
        return
    for i in range(start, len(cases)):
        c = cases[i]
        print(json.dumps({"start": i, "id": c.id}), flush=True)
        t = time.perf_counter()
        v = run_case(c)
        dt = time.perf_counter() - t
        status, detail = v.status, v.detail
        if c.time_limit_s is not None and dt > c.time_limit_s and status == "pass":
            status, detail = "fail", f"took {dt:.1f} s (limit {c.time_limit_s} s); {detail}"
        print(json.dumps({"done": i, "id": c.id, "status": status, "detail": detail, "seconds": round(dt, 3)}), flush=True)
    print(json.dumps({"end": len(cases)}), flush=True)


def _limit_memory(gib: float) -> None:
    limit = int(gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _read_child(proc: subprocess.Popen, case_timeout: float, results: list[dict]) -> tuple[bool, int | None]:
    """Collect one child's results; returns (finished all cases, index of a case that killed it)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf, current = b"", None
    while True:
        if b"\n" not in buf:
            wait = None if current is None else max(0.0, current["deadline"] - time.monotonic())
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:  # the case hangs (e.g. a quadratic regex): kill it
                proc.kill()
                proc.wait()
                results.append({"id": current["id"], "status": "hang", "detail": f"hung: killed after {case_timeout:.0f} s", "seconds": case_timeout})
                return False, current["start"]
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                proc.wait()
                if current is None:
                    raise RuntimeError(f"the probe child died outside a case (exit {proc.returncode})")
                results.append({"id": current["id"], "status": "raw-error", "detail": f"the interpreter died (exit {proc.returncode})", "seconds": None})
                return False, current["start"]
            buf += chunk
            continue
        line, buf = buf.split(b"\n", 1)
        msg = json.loads(line)
        if "start" in msg:
            current = {**msg, "deadline": time.monotonic() + case_timeout}
        elif "done" in msg:
            results.append({k: msg[k] for k in ("id", "status", "detail", "seconds")})
            current = None
        elif "end" in msg or "unavailable" in msg:
            proc.wait()
            if "unavailable" in msg:
                print(f"    group not run: {msg['unavailable']}", flush=True)
            return True, None


def run_group(group: str, code: Path, trials: int, memory_gib: float, case_timeout: float) -> list[dict]:
    """All cases of ``group`` against ``code``; a child that dies is restarted after its case."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(PROBES), str(TESTS)]), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1"}
    results: list[dict] = []
    start = 0
    while True:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", group, "--start", str(start), "--trials", str(trials)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, env=env, cwd=str(ROOT),
            preexec_fn=lambda: _limit_memory(memory_gib),
        )
        finished, killed_at = _read_child(proc, case_timeout, results)
        if finished:
            return results
        start = killed_at + 1


def summarise(results: dict[str, list[dict]]) -> dict[str, dict[str, int]]:
    out = {}
    for group, rows in results.items():
        c = Counter(r["status"] for r in rows)
        out[group] = {"tried": len(rows), "passed": c["pass"], "failed": c["fail"], "data_loss": c["data-loss"],
                      "hangs": c["hang"], "raw_errors": c["raw-error"]}
    keys = ("tried", "passed", "failed", "data_loss", "hangs", "raw_errors")
    out["total"] = {k: sum(v.get(k, 0) for v in out.values()) for k in keys}
    return out


_COLUMNS = (("tried", "tried"), ("passed", "passed"), ("failed", "failed"), ("data_loss", "data-loss"),
            ("hangs", "hangs"), ("raw_errors", "raw-errors"))


def print_table(summary: dict[str, dict[str, int]], label: str) -> None:
    print(f"\n{label}: {'group':<13}" + "".join(f" {h:>10}" for _, h in _COLUMNS))
    for group, s in summary.items():
        print(f"{'':{len(label)}}  {group:<13}" + "".join(f" {s.get(k, 0):>10}" for k, _ in _COLUMNS))


def compare(labels: list[str], groups: list[str] | None = None) -> str:
    """The before/after table (tried / passed / data-loss / hangs / raw errors per group)."""
    data = {lab: json.loads((RESULTS / f"robustness_probe_{lab}.json").read_text()) for lab in labels}
    head = "tried / passed / loss / hangs / raw"
    lines = [f"{'group':<13}" + "".join(f" | {lab + ': ' + head:>44}" for lab in labels)]
    shown = groups or [g for g in (*GROUPS, "total") if any(g in data[lab]["summary"] for lab in labels)]
    for group in shown:
        row = f"{group:<13}"
        for lab in labels:
            s = data[lab]["summary"].get(group, {})
            cells = [s.get(k, 0) for k in ("tried", "passed", "data_loss", "hangs", "raw_errors")]
            row += " | " + f"{cells[0]:>{len(lab) + 9}} / {cells[1]:>6} / {cells[2]:>4} / {cells[3]:>5} / {cells[4]:>3}"
        lines.append(row)
    for lab in labels:
        cases = [r for rows in data[lab]["cases"].values() for r in rows]
        parser = [r["seconds"] or 0.0 for r in cases if r["id"].startswith("reasoning/parser")]
        crashes = sum("interpreter died" in r["detail"] for r in cases)
        lines.append(f"{lab}: {crashes} case(s) killed the interpreter; slowest parser case {max(parser, default=0):.3f} s")
    text = "\n".join(lines)
    print(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose scope_shared is probed")
    ap.add_argument("--label", default="branch")
    ap.add_argument("--groups", nargs="*", default=list(GROUPS))
    ap.add_argument("--trials", type=int, default=10, help="trials of each multi-process case")
    ap.add_argument("--memory-gib", type=float, default=8.0)
    ap.add_argument("--case-timeout", type=float, default=300.0)
    ap.add_argument("--compare", nargs="+", default=None)
    ap.add_argument("--save", default=None, help="with --compare: also write the table to benchmarks/results/<name>.txt")
    ap.add_argument("--child", default=None)
    ap.add_argument("--start", type=int, default=0)
    args = ap.parse_args()
    if args.child:
        sys.path[:0] = [str(PROBES), str(TESTS)]
        child(args.child, args.start, args.trials)
        return
    if args.compare:
        text = compare(args.compare, args.groups if args.groups != list(GROUPS) else None)
        if args.save:
            (RESULTS / f"{args.save}.txt").write_text(text + "\n")
        return
    t0 = time.perf_counter()
    results = {}
    for g in args.groups:
        results[g] = run_group(g, args.code.resolve(), args.trials, args.memory_gib, args.case_timeout)
        bad = [r for r in results[g] if r["status"] != "pass"]
        print(f"[{g}] {len(results[g])} cases, {len(bad)} not passing ({time.perf_counter() - t0:.0f} s)", flush=True)
        for r in bad:
            print(f"    {r['status']:9} {r['id']}: {r['detail'][:160]}", flush=True)
    summary = summarise(results)
    print_table(summary, args.label)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"robustness_probe_{args.label}.json"
    out.write_text(json.dumps({"label": args.label, "code": str(args.code), "trials": args.trials,
                               "summary": summary, "cases": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
