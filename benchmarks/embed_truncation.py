"""Which part of a long prompt carries the routing signal? Measured on history parts only.

For each split seed the questions are split 80/20 into history and test parts (as in
``routing_quality.py``); the test part is never read. The history part is split again 80/20 into a
history and a validation part, and scope-knn routes the validation part with the query embedded from
different parts of the prompt: all tokens, the first N, the last N, or the first few plus the last.
Prints validation AUC / AUROC per truncation (means over seeds) and writes
``benchmarks/results/embed_truncation.json``.

    nice -n 10 python benchmarks/embed_truncation.py --dataset routerbench-11
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from scope_shared.data import dataset_path, stratified_split
from scope_shared.embedders import FastSpec, StaticEmbedder, Truncation, default_embedder, embed_with_cache, fast_embedder
from scope_shared.evaluation.harness import evaluate, make_split
from scope_shared.evaluation.curves import reference
from scope_shared.evaluation.scope_routers import ScopeRouter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from routing_quality import LOADERS  # noqa: E402

TRUNCATIONS = {
    "all tokens": Truncation(),
    "head 64": Truncation(head=64),
    "head 256": Truncation(head=256),
    "tail 64": Truncation(tail=64),
    "tail 128": Truncation(tail=128),
    "tail 256": Truncation(tail=256),
    "tail 512": Truncation(tail=512),
    "head 32 + tail 224": Truncation(head=32, tail=224),
}


def validation_figures(table, embs: np.ndarray, seeds: list[int]) -> dict[str, float]:
    """scope-knn on the validation part of each seed's history part (test parts untouched)."""
    rows = []
    for seed in seeds:
        tr, _ = stratified_split(table.benchmarks, 0.2, seed)
        hist = table.subset(tr)
        split, truth = make_split(hist, embs[tr], seed, 0.2, embedder_name="truncation-study")
        res = evaluate(ScopeRouter("scope-knn"), split, truth, reference(split.models, truth.scores, truth.costs), 0.0)
        rows.append((res.figures["auc"], res.figures["auroc"]))
    auc, auroc = np.mean(rows, axis=0)
    return {"auc": float(auc), "auroc": float(auroc)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="routerbench-11", choices=sorted(LOADERS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    table = LOADERS[args.dataset](dataset_path(args.dataset))
    base = fast_embedder(FastSpec(truncation=Truncation()))
    lengths = np.array([len(base.token_ids(q)) for q in table.questions])
    result: dict = {"dataset": args.dataset, "seeds": args.seeds, "protocol": "validation part of each history part",
                    "tokens_per_prompt": {"median": float(np.median(lengths)), "p90": float(np.percentile(lengths, 90))},
                    "fast": {}, "minilm": {}}
    print(f"{args.dataset}: prompts have {np.median(lengths):.0f} tokens (median), {np.percentile(lengths, 90):.0f} (p90)")
    for label, trunc in TRUNCATIONS.items():
        emb = StaticEmbedder(base.path, truncation=trunc, cache_size=0)
        result["fast"][label] = validation_figures(table, emb.embed(table.questions), args.seeds)
        print(f"  fast, {label:<20} AUC {result['fast'][label]['auc']:.4f}  AUROC {result['fast'][label]['auroc']:.4f}", flush=True)
    minilm = default_embedder()
    for label, texts in (("first 256 tokens", table.questions), ("last 1000 characters", [q[-1000:] for q in table.questions])):
        result["minilm"][label] = validation_figures(table, embed_with_cache(minilm, texts), args.seeds)
        print(f"  minilm, {label:<20} AUC {result['minilm'][label]['auc']:.4f}  AUROC {result['minilm'][label]['auroc']:.4f}", flush=True)
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"embed_truncation_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
