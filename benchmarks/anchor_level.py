"""How well a new model's anchors measure its level: suggested anchors against random ones.

    PYTHONPATH=. HF_HUB_OFFLINE=1 SCOPE_DATA_DIR=../shared/data nice -n 10 python benchmarks/anchor_level.py

For each split seed (stratified 80/20, as the routing benchmark) and each model in turn held out
(the other models are the "known" ones), N anchors are drawn from the history part, by
`sample_anchors` (what `suggest_questions` does; draw seed = split seed) and at random, and the
held-out model's mean score on them is compared with its accuracy on the test part. Prints, per
data set and N, the mean error (bias), the spread of the per-model mean errors and the RMSE of
both rules, and the RMSE ratio suggested / random; writes ``benchmarks/results/anchor_level.json``.
No router runs: this is the level every estimator's prior starts from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from scope_shared.data import dataset_path, load_llmrouter9, load_routerbench11, stratified_split
from scope_shared.embedders import as_embedder, embed_with_cache
from scope_shared.onboarding import sample_anchors

LOADERS = {"llmrouter-9": load_llmrouter9, "routerbench-11": load_routerbench11}
EMBED_TAIL = {"routerbench-11": 1000}  # as routing_quality.py


def level_errors(table, embs: np.ndarray, seeds: list[int], ns: list[int]) -> dict:
    """{rule: {N: (seeds x models) array of anchor mean - test accuracy}}."""
    m = len(table.models)
    errs = {rule: {n: np.zeros((len(seeds), m)) for n in ns} for rule in ("suggested", "random")}
    for si, seed in enumerate(tqdm(seeds, desc=table.name)):
        tr, te = stratified_split(table.benchmarks, 0.2, seed)
        hist, test = table.scores[tr], table.scores[te]
        bench = [table.benchmarks[i] for i in tr]
        for j in range(m):
            known = [k for k in range(m) if k != j]
            truth = np.nanmean(test[:, j])
            for n in ns:
                picked, _ = sample_anchors(hist[:, known], bench, n, embs[tr], seed)
                rnd = np.random.default_rng([seed, j, n]).choice(len(tr), n, replace=False)
                errs["suggested"][n][si, j] = np.nanmean(hist[picked, j]) - truth
                errs["random"][n][si, j] = np.nanmean(hist[rnd, j]) - truth
    return errs


def summary(e: np.ndarray) -> dict:
    per_model = e.mean(0)
    return {"bias": float(e.mean()), "rmse": float(np.sqrt(np.mean(e**2))),
            "per_model_mean_min": float(per_model.min()), "per_model_mean_max": float(per_model.max())}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    ap.add_argument("--seeds", type=int, default=10, help="split seeds 0..S-1")
    ap.add_argument("--n", type=int, nargs="+", default=[20, 50, 100, 250])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "anchor_level.json"))
    args = ap.parse_args(argv)
    result: dict = {"seeds": list(range(args.seeds)), "n": args.n, "datasets": {}}
    for ds in args.datasets:
        table = LOADERS[ds](dataset_path(ds))
        tail = EMBED_TAIL.get(ds)
        embs = embed_with_cache(as_embedder(None), [q[-tail:] for q in table.questions] if tail else table.questions)
        errs = level_errors(table, embs, result["seeds"], args.n)
        result["datasets"][ds] = {rule: {str(n): summary(e) for n, e in by_n.items()} for rule, by_n in errs.items()}
        print(f"\n{ds}: anchor mean - test accuracy, every model held out in turn, {args.seeds} split seeds")
        print(f"  {'N':>4}  {'rule':<10} {'bias':>8} {'per-model mean range':>24} {'RMSE':>7}  RMSE suggested/random")
        for n in args.n:
            for rule in ("suggested", "random"):
                s = result["datasets"][ds][rule][str(n)]
                ratio = ""
                if rule == "suggested":
                    ratio = f"{s['rmse'] / result['datasets'][ds]['random'][str(n)]['rmse']:.2f}"
                print(f"  {n:>4}  {rule:<10} {s['bias']:+8.4f}   [{s['per_model_mean_min']:+.3f}, "
                      f"{s['per_model_mean_max']:+.3f}] {s['rmse']:>9.4f}  {ratio}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
