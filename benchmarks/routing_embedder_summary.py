"""Does the routing-tuned embedder route at least as well as MiniLM? The figures of issue 26, from the
JSON files that ``routing_quality.py --embedders minilm,fast,routing`` wrote (one or more per data set,
e.g. seeds run in two processes; per-seed figures are pooled by seed):

    python benchmarks/routing_embedder_summary.py benchmarks/results/embedders_routing_*.json

For each data set and setting: the best SCOPE router's AUC (mean over seeds) per embedder and the gap
to MiniLM in points; then the mean gap over all (data set, setting) cells, and the targets (the tuned
embedder >= MiniLM in every cell and >= +0.5 points on the mean). Writes
``benchmarks/results/routing_embedder_summary.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE, TUNED = "minilm", "routing"


def pooled(files: list[Path]) -> dict:
    """{dataset: {setting: {embedder: {router: {seed: auc}}}}} from every file's per-seed figures."""
    out: dict = {}
    for f in files:
        run = json.loads(f.read_text())
        for emb, res in run.get("embedders", {}).items():
            for setting, sres in res["settings"].items():
                for router, r in sres["routers"].items():
                    if r.get("kind") != "scope":
                        continue
                    seeds = out.setdefault(run["dataset"], {}).setdefault(setting, {}).setdefault(emb, {})
                    seeds.setdefault(router, {}).update({int(p["seed"]): p["auc"] for p in r["per_seed"]})
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
                router = max(means, key=means.get)
                best[emb] = {"router": router, "auc": means[router], "seeds": sorted(routers[router])}
            gap = 100 * (best[TUNED]["auc"] - best[BASELINE]["auc"])
            cells.append(gap)
            rows.append({"dataset": ds, "setting": setting, "best": best, "tuned_minus_minilm_points": gap})
    mean_gap = float(np.mean(cells)) if cells else None
    return {"cells": rows, "mean_gap_points": mean_gap,
            "target_every_cell": bool(cells) and all(g >= 0 for g in cells),
            "target_mean_plus_half_point": mean_gap is not None and mean_gap >= 0.5}


def main(argv: list[str] | None = None) -> dict:
    files = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not files:
        raise SystemExit("give the routing_quality JSON files (run with --embedders minilm,fast,routing)")
    summary = summarise(pooled(files))
    print(f"best SCOPE AUC per embedder (mean over seeds); gap = {TUNED} - {BASELINE}, in points")
    for row in summary["cells"]:
        best = row["best"]
        cells = "  ".join(f"{e} {100 * b['auc']:.2f} ({b['router']})" for e, b in best.items())
        print(f"  {row['dataset']:<15} {row['setting']:<15} {cells}  gap {row['tuned_minus_minilm_points']:+.2f}"
              f"  seeds {best[TUNED]['seeds']}")
    if summary["mean_gap_points"] is not None:
        print(f"  mean gap over {len(summary['cells'])} cells: {summary['mean_gap_points']:+.2f} points; "
              f"tuned >= MiniLM in every cell: {summary['target_every_cell']}; "
              f"mean >= +0.5: {summary['target_mean_plus_half_point']}")
    out = RESULTS / "routing_embedder_summary.json"
    out.write_text(json.dumps({"files": [f.name for f in files], **summary}, indent=1))
    print(f"wrote {out}")
    return summary


if __name__ == "__main__":
    main()
