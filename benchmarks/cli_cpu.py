"""CPU seconds of ``scope route`` and ``scope demo`` from a fresh process, cold and warm, before and after.

Each run is a new ``python -m scope_shared.cli ...`` process; its user + system CPU time is read from
``os.wait4`` (what ``/usr/bin/time -f "%U %S"`` prints), which a busy shared machine disturbs far less
than wall time. *Cold*: before the run, the page-cache pages of every file it reads (the imported
packages, the MiniLM weights, the source trees) are dropped with ``posix_fadvise(POSIX_FADV_DONTNEED)``
(best effort) and the embedding caches point at an empty folder. *Warm*: right after another run of the same command.
``before`` is the source at ``--baseline-ref`` (default ``main``), ``after`` this checkout, run in
the same loop so load changes fall on both. Writes ``benchmarks/results/cli_cpu.{json,txt}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from route_startup import PACKAGES, evict, site_packages  # noqa: E402  (same eviction as the startup benchmark)

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    'route ""': ["route", ""],
    'route "q" --min-accuracy 2': ["route", "q", "--min-accuracy", "2"],
    'route "What is 17 * 23?"': ["route", "What is 17 * 23?"],
    "demo": ["demo"],
}


def cpu_seconds(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, int, int]:
    """Run ``python -m scope_shared.cli argv``; (user + system CPU seconds, exit code, bytes on stderr)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "scope_shared.cli", *argv], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0, os.SEEK_END)
        return usage.ru_utime + usage.ru_stime, proc.returncode, err.tell()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline-ref", default="main")
    ap.add_argument("--cold", type=int, default=1)
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cli_cpu"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cli-cpu-"))
    base = work / "baseline"
    base.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
    env0 = {k: v for k, v in os.environ.items() if k not in ("SCOPE_DATA_DIR", "SCOPE_QUIET")}
    env0.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    trees = {"before": base, "after": ROOT}
    sp = site_packages()
    pages = [sp / p for p in PACKAGES if (sp / p).exists()] + [ROOT / "scope_shared", base]
    runs: dict[str, dict[str, dict[str, list[float]]]] = {
        c: {t: {"cold": [], "warm": [], "stderr_bytes": []} for t in trees} for c in COMMANDS}
    for label, argv in COMMANDS.items():
        for tree, src in trees.items():
            for mode in ["cold"] * args.cold + ["warm"] * args.warm:  # a cold run leaves the cache warm
                cache = work / f"cache-{tree}-{mode}-{len(runs[label][tree][mode])}"
                env = {**env0, "PYTHONPATH": str(src), "SCOPE_CACHE_DIR": str(cache if mode == "cold" else work / "cache")}
                if mode == "cold":
                    evict(pages)
                cpu, rc, err_bytes = cpu_seconds(argv, env, str(work))
                expected_rc = 2 if label.startswith(('route ""', 'route "q"')) else 0
                if rc != expected_rc:
                    raise SystemExit(f"{tree}: scope {' '.join(argv)} exited {rc}, expected {expected_rc}")
                runs[label][tree][mode].append(cpu)
                runs[label][tree]["stderr_bytes"].append(err_bytes)
                print(f"{label:<28} {tree:<7} {mode:<5} {cpu:6.2f} CPU s  (stderr {err_bytes} bytes)", flush=True)
    lines = [f"scope CLI CPU seconds (user + system), medians of {args.cold} cold and {args.warm} warm fresh processes; "
             f"before = {args.baseline_ref}, after = this checkout; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"]
    summary = {}
    for label in COMMANDS:
        row = {t: {m: statistics.median(runs[label][t][m]) for m in ("cold", "warm")} for t in trees}
        row["stderr_bytes"] = {t: max(runs[label][t]["stderr_bytes"]) for t in trees}
        summary[label] = row
        b, a = row["before"], row["after"]
        lines.append(f"  scope {label:<28} before cold {b['cold']:6.2f} warm {b['warm']:6.2f} | after cold {a['cold']:6.2f} "
                     f"warm {a['warm']:6.2f} | after/before warm {a['warm'] / b['warm']:.2f} | stderr bytes "
                     f"{row['stderr_bytes']['before']} -> {row['stderr_bytes']['after']}")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps({"baseline_ref": args.baseline_ref, "medians": summary, "runs": runs,
                                                    "loadavg": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
