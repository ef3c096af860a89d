"""Spend against budget in two RAG pipelines under a raise-mode budget: this code against a baseline.

Pipelines (stand-in models that bill like providers, `tests/fixtures_rag.py`; the toy history of
`tests/conftest.py`; 200 questions each):

- ``langchain-rag``: keyword retriever (three documents) + "stuff" prompt + `SCOPERouter` + parser;
- ``llamaindex-compact`` / ``llamaindex-refine``: a `VectorStoreIndex` query engine, three chunks,
  chat models, `SCOPELLM` as the LLM (refine makes three LLM calls a query).

Each runs under ``Ledger(0.60, mode="raise")`` (about 40% of what the 200 questions cost
unbudgeted), with providers billing exactly the tokens used (``bill 1x``) or 1-3x them
(``bill 1-3x``, drawn per call; seeds 0-2, median and worst reported), one query at a time or 8
concurrent (asyncio). Reported per scenario: spent / budget, overdraw (% of the budget), queries
answered, stopped by the budget (an exception), and answered "Empty Response" (the stop swallowed).

The baseline runs the same script against another checkout in a subprocess of the same run:

    git archive main | tar -x -C /tmp/scope-main
    nice -n 10 python benchmarks/budget_pipelines.py --baseline-src /tmp/scope-main --baseline-label main
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BUDGET = 0.60
SCENARIOS = [  # (pipeline, billing range, concurrency)
    ("langchain-rag", (1.0, 1.0), 1),
    ("langchain-rag", (1.0, 3.0), 1),
    ("langchain-rag", (1.0, 3.0), 8),
    ("llamaindex-compact", (1.0, 1.0), 1),
    ("llamaindex-refine", (1.0, 1.0), 1),
    ("llamaindex-refine", (1.0, 3.0), 1),
    ("llamaindex-refine", (1.0, 3.0), 8),
]


# ---------------------------------------------------------------- worker (runs inside one checkout)
def _pipeline(name: str, bill: tuple[float, float], seed: int) -> tuple[Any, Any, Any]:
    """(ledger, sync ask, async ask) for one scenario, built with whichever library is importable."""
    from conftest import CARDS, toy_embedder, toy_history
    from fixtures_rag import billing_chats, billing_llms, langchain_rag_chain, llamaindex_rag_engine

    from scope_shared import Ledger, Router

    router = Router(CARDS, toy_history(), embedder=toy_embedder())
    ledger = Ledger(BUDGET, mode="raise")
    if name == "langchain-rag":
        from langchain_scope import SCOPERouter

        chain = langchain_rag_chain(SCOPERouter(candidates=billing_chats(bill, seed), router=router))
        config = {"configurable": {"scope_ledger": ledger}}
        return ledger, lambda q: chain.invoke(q, config=config), lambda q: chain.ainvoke(q, config=config)
    from llamaindex_scope import SCOPELLM

    engine = llamaindex_rag_engine(SCOPELLM(router, billing_llms(bill, seed), ledger=ledger), name.split("-")[1])
    return ledger, lambda q: str(engine.query(q)), lambda q: _text(engine.aquery(q))


async def _text(pending: Any) -> str:
    return str(await pending)


def _scenario(name: str, bill: tuple[float, float], concurrency: int, seed: int) -> dict[str, Any]:
    from fixtures_rag import QUERIES

    from scope_shared import BudgetExceeded

    ledger, ask, aask = _pipeline(name, bill, seed)
    outcomes: list[str] = []

    def outcome(answer: str) -> str:
        return "empty" if answer.strip() == "Empty Response" else "answered"

    if concurrency == 1:
        for q in QUERIES:
            try:
                outcomes.append(outcome(ask(q)))
            except BudgetExceeded:
                outcomes.append("stopped")
    else:
        gate = asyncio.Semaphore(concurrency)

        async def one(q: str) -> str:
            async with gate:
                try:
                    return outcome(await aask(q))
                except BudgetExceeded:
                    return "stopped"

        async def main() -> list[str]:
            return await asyncio.gather(*(one(q) for q in QUERIES))

        outcomes = asyncio.run(main())
    spent = ledger.spent
    return {
        "spent": spent,
        "spent_over_budget": spent / BUDGET,
        "overdraw_pct": 100 * max(0.0, spent - BUDGET) / BUDGET,
        **{k: outcomes.count(k) for k in ("answered", "stopped", "empty")},
    }


def worker() -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT / "tests"))
    out = []
    for name, bill, concurrency in SCENARIOS:
        seeds = [0] if bill == (1.0, 1.0) else [0, 1, 2]
        runs = [_scenario(name, bill, concurrency, s) for s in seeds]
        out.append({"pipeline": name, "bill": list(bill), "concurrency": concurrency, "runs": runs})
        print(f"  {name} bill {bill} x{concurrency}: {[round(r['spent_over_budget'], 3) for r in runs]}", file=sys.stderr)
    return out


# ---------------------------------------------------------------- driver
def _run_worker(src: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, __file__, "--worker"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    sys.stderr.write(done.stderr[-4000:])
    return json.loads(done.stdout)


def _summary(entry: dict[str, Any]) -> dict[str, float]:
    runs = entry["runs"]
    ratio = [r["spent_over_budget"] for r in runs]
    return {
        "spent_over_budget_median": statistics.median(ratio),
        "spent_over_budget_worst": max(ratio),
        "overdraw_pct_worst": max(r["overdraw_pct"] for r in runs),
        "answered": statistics.median(r["answered"] for r in runs),
        "stopped": statistics.median(r["stopped"] for r in runs),
        "empty": statistics.median(r["empty"] for r in runs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help="(internal) run the scenarios with the importable library")
    ap.add_argument("--baseline-src", type=Path, help="a checkout of the baseline (e.g. main) to compare against")
    ap.add_argument("--baseline-label", default="baseline")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker()))
        return
    print("this code:", file=sys.stderr)
    ours = _run_worker(ROOT)
    theirs = None
    if args.baseline_src is not None:
        print(f"{args.baseline_label}:", file=sys.stderr)
        theirs = _run_worker(args.baseline_src.resolve())
    rows = []
    header = f"{'pipeline':20} {'bill':8} {'conc':>4}  {'spent/budget':>12} {'worst':>7} {'overdraw%':>9} {'ans':>4} {'stop':>4} {'empty':>5}"
    header += "   (spent/budget: median over seeds; worst: highest; overdraw: worst, % of budget)"
    lines = [f"budget ${BUDGET:.2f}, raise mode, 200 queries per run", header]
    for i, entry in enumerate(ours):
        label = f"{entry['pipeline']:20} {'1x' if entry['bill'] == [1.0, 1.0] else '1-3x':8} {entry['concurrency']:>4}"
        row = {"pipeline": entry["pipeline"], "bill": entry["bill"], "concurrency": entry["concurrency"],
               "this": _summary(entry), "runs": entry["runs"]}
        for who, s in (("this", row["this"]),) + ((("baseline", _summary(theirs[i])),) if theirs else ()):
            lines.append(
                f"{label}  {s['spent_over_budget_median']:12.4f} {s['spent_over_budget_worst']:7.4f} "
                f"{s['overdraw_pct_worst']:9.2f} {s['answered']:4.0f} {s['stopped']:4.0f} {s['empty']:5.0f}  {who if theirs else ''}"
            )
        if theirs:
            row["baseline"] = _summary(theirs[i])
            row["baseline_runs"] = theirs[i]["runs"]
            b, t = row["baseline"]["spent_over_budget_worst"], row["this"]["spent_over_budget_worst"]
            lines.append(f"{'':36}worst spent/budget, this / {args.baseline_label}: {t / b:.3f}")
        rows.append(row)
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "budget_pipelines.json").write_text(
        json.dumps({"budget": BUDGET, "baseline": args.baseline_label if theirs else None, "scenarios": rows}, indent=1)
    )
    (RESULTS / "budget_pipelines.txt").write_text(text + "\n")
    _plot(rows, args.baseline_label if theirs else None)


def _plot(rows: list[dict[str, Any]], baseline: str | None) -> None:
    """Worst spent/budget per scenario, this code next to the baseline (benchmarks/results/*.png)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the bench extra is not installed: the JSON and text are written anyway
        return
    labels = [f"{r['pipeline']}\nbill {'1x' if r['bill'] == [1.0, 1.0] else '1-3x'}, x{r['concurrency']}" for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    if baseline:
        ax.bar([x - 0.2 for x in xs], [r["baseline"]["spent_over_budget_worst"] for r in rows], 0.4, label=baseline)
    ax.bar([x + (0.2 if baseline else 0) for x in xs], [r["this"]["spent_over_budget_worst"] for r in rows],
           0.4, label="this code")
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("spent / budget (worst of seeds)")
    ax.set_ylim(0.9, max(1.05, max(r.get("baseline", r["this"])["spent_over_budget_worst"] for r in rows) + 0.03))
    ax.set_title(f"Raise-mode budget of ${BUDGET:.2f}, 200 RAG queries per run")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "budget_pipelines.png", dpi=120)


if __name__ == "__main__":
    main()
