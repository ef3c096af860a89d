"""Does the routing-tuned embedder route at least as well as MiniLM? The figures of issue 26, from the
JSON files that ``routing_quality.py --embedders minilm,fast,routing`` wrote (one or more per data set,
e.g. seeds run in two processes; per-seed figures are pooled by seed):

    python benchmarks/routing_embedder_summary.py benchmarks/results/embedders_routing_*.json

For each data set and setting: the best SCOPE router's AUC (mean over seeds) per embedder and the gap
to MiniLM in points; then the mean gap over all (data set, setting) cells, and the targets (the tuned
embedder >= MiniLM in every cell and >= +0.5 points on the mean); the same gaps for every other
embedder (``fast``: what the tuning adds over its base). Writes
``benchmarks/results/routing_embedder_summary.json`` and the printed table as ``.txt`` (``--out``
for another path). Files run with ``--validation`` (history parts only) are summarised apart: mixing
them with test runs is refused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE, TUNED = "minilm", "routing"


def pooled(files: list[Path], labels: dict[Path, str] | None = None, figure: str = "auc") -> dict:
    """{dataset: {setting: {embedder: {router: {seed: auc}}}}} from every file's per-seed figures.

    ``labels``: a file's tuned embedder (or, in a run of one embedder, its result) under another name:
    variants of the training compared side by side. ``figure``: ``auc`` or ``auc_without_cpu`` (the
    same decisions without their measured CPU time: unmoved by the machine's load; runs older than
    it have none, and their seeds are left out)."""
    out: dict = {}
    kinds = set()
    for f in files:
        run = json.loads(f.read_text())
        kinds.add(bool(run.get("validation")))
        if len(kinds) > 1:
            raise SystemExit("some files are --validation runs and some are not: summarise them apart")
        label = (labels or {}).get(f)
        runs = run.get("embedders") or {TUNED: {"settings": run["settings"]}}
        for emb, res in runs.items():
            emb = label if label and emb == TUNED else emb
            for setting, sres in res["settings"].items():
                for router, r in sres["routers"].items():
                    if r.get("kind") != "scope":
                        continue
                    seeds = out.setdefault(run["dataset"], {}).setdefault(setting, {}).setdefault(emb, {})
                    seeds.setdefault(router, {}).update({int(p["seed"]): p[figure] for p in r["per_seed"]
                                                         if p.get(figure) is not None})
    return out


def summarise(table: dict) -> dict:
    cells, rows = [], []
    for ds, settings in sorted(table.items()):
        for setting, embs in settings.items():
            if BASELINE not in embs or TUNED not in embs:
                continue
            best = {}
            for emb, routers in embs.items():
                means = {r: float(np.mean(list(s.values()))) for r, s in routers.items() if s}
                if not means:  # no seed has the figure (a run older than it)
                    continue
                router = max(means, key=means.get)
                best[emb] = {"router": router, "auc": means[router], "seeds": sorted(routers[router])}
            if BASELINE not in best or TUNED not in best:
                continue
            gap = 100 * (best[TUNED]["auc"] - best[BASELINE]["auc"])
            cells.append(gap)
            rows.append({"dataset": ds, "setting": setting, "best": best, "tuned_minus_minilm_points": gap,
                         "minus_minilm_points": {e: 100 * (b["auc"] - best[BASELINE]["auc"]) for e, b in best.items()}})
    mean_gap = float(np.mean(cells)) if cells else None
    embedders = sorted({e for r in rows for e in r["best"]})
    mean_by = {e: float(np.mean([r["minus_minilm_points"][e] for r in rows if e in r["best"]])) for e in embedders}
    return {"cells": rows, "mean_gap_points": mean_gap, "mean_minus_minilm_points": mean_by,
            "target_every_cell": bool(cells) and all(g >= 0 for g in cells),
            "target_mean_plus_half_point": mean_gap is not None and mean_gap >= 0.5}


def report_lines(summary: dict, figure: str = "auc") -> list[str]:
    lines = [f"best SCOPE {figure} per embedder (mean over seeds); gap = {TUNED} - {BASELINE}, in points"]
    for row in summary["cells"]:
        best = row["best"]
        cells = "  ".join(f"{e} {100 * b['auc']:.2f} ({b['router']})" for e, b in best.items())
        seeds = sorted(set().union(*(b["seeds"] for b in best.values())))
        lines.append(f"  {row['dataset']:<15} {row['setting']:<15} {cells}  gap {row['tuned_minus_minilm_points']:+.2f}"
                     f"  seeds {seeds}")
    if summary["mean_gap_points"] is not None:
        others = ", ".join(f"{e} {g:+.2f}" for e, g in summary["mean_minus_minilm_points"].items() if e != BASELINE)
        lines.append(f"  mean gap over {len(summary['cells'])} cells: {summary['mean_gap_points']:+.2f} points "
                     f"(each embedder - {BASELINE}: {others}); tuned >= MiniLM in every cell: "
                     f"{summary['target_every_cell']}; mean >= +0.5: {summary['target_mean_plus_half_point']}")
    return lines


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="routing_quality JSON files (--embedders minilm,fast,routing); "
                    "LABEL=FILE shows that file's tuned embedder (or its only one) as LABEL")
    ap.add_argument("--out", type=Path, default=RESULTS / "routing_embedder_summary.json")
    ap.add_argument("--figure", choices=["auc", "auc_without_cpu"], default="auc",
                    help="auc_without_cpu: the decisions alone, without their measured CPU time (load-free)")
    args = ap.parse_args(argv)
    files, labels = [], {}
    for a in args.files:
        label, sep, path = a.partition("=")
        files.append(Path(path if sep else a))
        if sep:
            labels[files[-1]] = label
    summary = summarise(pooled(files, labels, args.figure))
    lines = report_lines(summary, args.figure)
    print("\n".join(lines))
    args.out.write_text(json.dumps({"files": args.files, "figure": args.figure, **summary}, indent=1))
    args.out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.txt')}")
    return summary


if __name__ == "__main__":
    main()
