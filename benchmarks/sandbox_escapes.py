"""The code sandbox's escape suite against any checkout, and a before/after table.

    python benchmarks/sandbox_escapes.py                          # this checkout, label "branch"
    python benchmarks/sandbox_escapes.py --code /path/to/main --label main
    python benchmarks/sandbox_escapes.py --compare main branch    # the before/after table

The attacks are `tests/probes/probe_sandbox.py` (files, processes, signals, network, environment,
resources, hook tampering, grading integrity, plus controls), graded through ``CodeGrader`` of
the checkout under test in a disposable child process, with canaries on the host. It prints, per
category: attacks, escapes, forged passes, and whether the controls held (right answers, numpy
included, pass; wrong ones fail). ``--pack`` also grades, for each code question of the bundled
pack whose tests the scripted stand-in can answer (`lookup_solution`), that right answer: how
many pass (right answers must keep passing under the new harness). ``--hide-unshare`` grades with
no ``unshare`` on PATH, as in containers without user namespaces (main's sandbox then has no
network namespace; bubblewrap stays on PATH). Writes
``benchmarks/results/sandbox_escapes_<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path[:0] = [str(ROOT / "tests" / "probes"), str(ROOT / "tests")]

from probe_sandbox import run_suite  # noqa: E402

CATEGORIES = ("files", "processes", "signals", "network", "environment", "resources", "hook", "integrity", "control")

_PACK = r'''
import json, sys
from concurrent.futures import ThreadPoolExecutor
from scope_shared.onboarding.graders import CodeGrader
from scope_shared.onboarding.pack import load_pack
from scope_shared.onboarding.scripted import lookup_solution
grader = CodeGrader(timeout_s=10)
qs = [q for q in load_pack().questions if q.metric == "code"]
jobs = [(q, lookup_solution(q)) for q in qs]
jobs = [(q, s) for q, s in jobs if s is not None]
def grade(job):
    q, code = job
    g = grader.grade("```python\n" + code + "```", q)
    return q.id, g.score, g.detail
with ThreadPoolExecutor(int(sys.argv[1])) as ex:
    rows = list(ex.map(grade, jobs))
print(json.dumps({"questions": len(qs), "answered": len(jobs), "passed": sum(r[1] == 1.0 for r in rows),
                  "failed": [[i, d] for i, s, d in rows if s != 1.0]}))
'''


def measure(code: Path, label: str, timeout_s: float, pack: bool, workers: int, hide_unshare: bool = False) -> dict:
    t = time.perf_counter()
    outcomes = run_suite(code, timeout_s=timeout_s, hide_unshare=hide_unshare, progress=lambda o: print(
        f"  {o.id:26s} {o.category:11s} {'ok' if o.ok else 'ESCAPE' if o.escaped else 'FORGED' if o.forged else 'WRONG'}"
        f"  {o.detail[:70]}", flush=True) if sys.stdout.isatty() else None)
    per: dict = defaultdict(lambda: {"attacks": 0, "escapes": 0, "forged": 0, "not_ok": 0})
    for o in outcomes:
        row = per[o.category]
        row["attacks"] += 1
        row["escapes"] += int(o.escaped)
        row["forged"] += int(o.forged)
        row["not_ok"] += int(not o.ok)
    out = {"label": label, "code": str(code), "timeout_s": timeout_s, "hide_unshare": hide_unshare, "seconds": round(time.perf_counter() - t, 1),
           "per_category": dict(per),
           "attacks": sum(v["attacks"] for k, v in per.items() if k != "control"),
           "escapes": sum(o.escaped for o in outcomes), "forged": sum(o.forged for o in outcomes),
           "controls_failed": [o.id for o in outcomes if o.category == "control" and not o.ok],
           "outcomes": [{"id": o.id, "category": o.category, "score": o.score, "ok": o.ok, "escaped": o.escaped,
                         "forged": o.forged, "seconds": round(o.seconds, 2), "detail": o.detail, "evidence": o.evidence}
                        for o in outcomes]}
    if pack:
        env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", _PACK, str(workers)], capture_output=True, text=True, env=env, cwd=str(code))
        if r.returncode != 0:
            raise SystemExit(f"pack grading failed on {code}:\n{r.stderr[-2000:]}")
        out["pack"] = json.loads(r.stdout.strip().splitlines()[-1])
        out["pack"]["seconds"] = round(time.perf_counter() - t, 1)
    return out


def table(rows: list[dict]) -> str:
    width = max(30, *(len(r["label"]) + 24 for r in rows))
    head = f"{'category':12s}" + "".join(f" | {r['label'] + ' attacks/escapes/forged':>{width}s}" for r in rows)
    lines = [head, "-" * len(head)]
    for c in CATEGORIES:
        cells = []
        for r in rows:
            v = r["per_category"].get(c, {"attacks": 0, "escapes": 0, "forged": 0, "not_ok": 0})
            cells.append(f"{v['attacks']:>10d} / {v['escapes']:>3d} / {v['forged']:>3d}" + ("" if c != "control" else f" ({v['not_ok']} wrong)"))
        lines.append(f"{c:12s}" + "".join(f" | {x:>{width}s}" for x in cells))
    totals = [f"{r['attacks']:>10d} / {r['escapes']:>3d} / {r['forged']:>3d}" for r in rows]
    lines.append(f"{'total':12s}" + "".join(f" | {x:>{width}s}" for x in totals))
    for r in rows:
        ctl = ", ".join(r["controls_failed"]) or "none"
        lines.append(f"{r['label']}: {r['escapes']} escapes, {r['forged']} forged passes in {r['attacks']} attacks; controls failed: {ctl}")
        if "pack" in r:
            p = r["pack"]
            lines.append(f"{r['label']}: right answers to the pack's code questions: {p['passed']} / {p['answered']} pass")
    if len(rows) == 2 and rows[0]["escapes"] + rows[0]["forged"]:
        a, b = rows
        lines.append(f"escapes + forged passes: {a['label']} {a['escapes'] + a['forged']} -> {b['label']} {b['escapes'] + b['forged']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", type=Path, default=ROOT, help="the checkout whose grader is attacked (default: this one)")
    ap.add_argument("--label", default="branch")
    ap.add_argument("--timeout", type=float, default=5.0, help="the grader's time limit per answer (s)")
    ap.add_argument("--pack", action="store_true", help="also grade right answers to the bundled pack's code questions")
    ap.add_argument("--workers", type=int, default=2, help="grades in flight for --pack")
    ap.add_argument("--hide-unshare", action="store_true",
                    help="grade with no `unshare` on PATH, as in containers without user namespaces (bwrap stays)")
    ap.add_argument("--compare", nargs="+", metavar="LABEL", help="print the table of saved runs and exit")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.compare:
        rows = [json.loads((RESULTS / f"sandbox_escapes_{label}.json").read_text()) for label in args.compare]
        print(table(rows))
        return
    row = measure(args.code.resolve(), args.label, args.timeout, args.pack, args.workers, args.hide_unshare)
    path = RESULTS / f"sandbox_escapes_{args.label}.json"
    path.write_text(json.dumps(row, indent=1))
    print(table([row]))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
