"""Learned estimator, onboarded model with and without output lengths, on a real routing table.

One model is held out of training; the learned estimator trains on the others' history part; the
held-out model then joins with N random history outcomes, once without output-token counts and once
with them (routerbench-11: its real counts; llmrouter-9 has none: synthetic ~300 tokens). Printed:
its mean p_correct on the test part beside its accuracy. Issue 11 item 4: before the fix one of the
two cases collapsed to p = 0 (which one depends on whether the training history had lengths).

Run:  PYTHONPATH=$PWD python benchmarks/learned_lengths.py --dataset llmrouter-9 --model qwen2.5-7b-instruct
      PYTHONPATH=$PWD python benchmarks/learned_lengths.py --dataset routerbench-11 --model mistralai/mixtral-8x7b-chat
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from scope_shared.cards import Outcome
from scope_shared.data import dataset_path, load_llmrouter9
from scope_shared.data.realsets import load_routerbench11
from scope_shared.data.table import stratified_split
from scope_shared.embedders import default_embedder, embed_with_cache
from scope_shared.estimators.learned import LearnedConfig, LearnedEstimator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="llmrouter-9", choices=["llmrouter-9", "routerbench-11"])
    ap.add_argument("--model", default="qwen2.5-7b-instruct")
    ap.add_argument("-n", type=int, default=200, help="outcomes the held-out model joins with")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    load = load_llmrouter9 if args.dataset == "llmrouter-9" else load_routerbench11
    table = load(dataset_path(args.dataset))
    emb = embed_with_cache(default_embedder(), table.questions, show_progress=False)
    tr, te = stratified_split(table.benchmarks, 0.2, args.seed)
    j = table.models.index(args.model)
    part = table.subset(tr)
    y_new = part.scores[:, j].copy()
    tok_new = part.output_tokens[:, j].copy() if part.output_tokens is not None else np.full(len(tr), np.nan)
    keep = np.random.default_rng(args.seed + 100).permutation(len(tr))[: args.n]

    def history_without_model():  # the history part, the held-out model's outcomes removed
        h = table.subset(tr)
        h.scores[:, j] = np.nan
        if h.output_tokens is not None:
            h.output_tokens[:, j] = np.nan
        return h.to_history(None, show_progress=False, embeddings=emb[tr])

    t0 = time.time()
    est = LearnedEstimator(LearnedConfig(epochs=args.epochs, seed=args.seed))
    est.fit(history_without_model(), models=[m for m in table.models if m != args.model], show_progress=False)
    print(f"{args.dataset}: trained in {time.time() - t0:.0f}s (training history has lengths: {est.has_length})")
    fake = np.exp(np.random.default_rng(7).normal(np.log(300), 0.5, len(tr)))
    test_acc = float(np.nanmean(table.scores[te, j]))
    rows = []
    for with_len in (False, True):
        h = history_without_model()
        for qid in keep[np.isfinite(y_new[keep])]:
            tok = (tok_new[qid] if np.isfinite(tok_new[qid]) else fake[qid]) if with_len else None
            h.add_outcomes(int(qid), [Outcome(model="newbie", correct=float(y_new[qid]), output_tokens=tok)])
        p = est.predict_for([""] * len(te), emb[te], ["newbie"], h).p_correct[:, 0]
        print(
            f"  {args.model} joins with {args.n} outcomes, lengths={with_len!s:5}: mean p_correct {p.mean():.3f} "
            f"(std {p.std():.3f}); accuracy on its {args.n}: {np.nanmean(y_new[keep]):.3f}, on the test part: {test_acc:.3f}"
        )
        rows.append({"with_lengths": with_len, "mean_p_correct": float(p.mean()), "std_p_correct": float(p.std()),
                     "test_accuracy": test_acc, "ratio_p_to_accuracy": float(p.mean()) / test_acc})
    out = Path(__file__).resolve().parent / "results" / f"learned_lengths_{args.dataset}.json"
    out.write_text(json.dumps({"dataset": args.dataset, "model": args.model, "n": args.n, "epochs": args.epochs,
                               "seed": args.seed, "training_has_lengths": bool(est.has_length), "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
