"""Predictor latency per routing decision: the reasoning estimator (tiny local model) vs kNN.

No GPU and no released checkpoint here, so the reasoning predictor is a tiny randomly initialised
2-layer Qwen2 (hidden 64, built by the tests' fixture; BPE tokenizer trained on the questions)
generating a fixed number of new tokens (greedy, ``--new-tokens``) for every candidate of a query
in one batch. A decision = one query, all 9 llmrouter-9 candidates, anchor retrieval included.
The random model rarely writes the format, so pairs fall back to kNN (retries disabled: one
predictor pass per decision); the figure is about cost per decision, not quality. Also measured:
generation with the shared-prefix KV cache on vs off, A/B interleaved per decision. Writes
benchmarks/results/reasoner_latency.json.

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 SCOPE_DATA_DIR=/work/shared/data \
        nice -n 10 python benchmarks/reasoner_latency.py --questions 12
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures_reasoning import make_tiny_lm  # noqa: E402

from scope_shared.data import dataset_path, load_llmrouter9, stratified_split  # noqa: E402
from scope_shared.embedders import default_embedder, embed_with_cache  # noqa: E402
from scope_shared.estimators import KNNEstimator  # noqa: E402
from scope_shared.estimators.reasoning import ReasoningEstimator, TransformersBackend  # noqa: E402
from scope_shared.estimators.reasoning.evaluation import evaluate_on_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=12)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    table = load_llmrouter9(dataset_path("llmrouter-9"))
    embedder = default_embedder()
    embs = embed_with_cache(embedder, table.questions, show_progress=False)
    train_idx, test_idx = stratified_split(table.benchmarks, 0.2, args.seed)
    train, test = table.subset(train_idx), table.subset(test_idx)
    history = train.to_history(embedder, show_progress=False, embeddings=embs[train_idx])
    test_embs = embs[test_idx]

    # tokenizer trained on the questions with a 16k vocabulary: prompt lengths close to a real
    # BPE tokenizer's (Qwen's has 151k entries), so the latency reflects realistic sequence lengths
    tiny = make_tiny_lm(Path(tempfile.mkdtemp()) / "tiny", hidden=64, vocab_size=16000, corpus=table.questions)
    runs = {}

    def run(label, est):
        t0 = time.perf_counter()
        res = evaluate_on_table(est, history, embedder, test, args.questions, args.seed, test_embs, show_progress=False)
        res["wall_s"] = time.perf_counter() - t0
        runs[label] = res
        print(f"{label:<34} median {res['latency_s_median'] * 1000:9.1f} ms/decision  "
              f"p90 {res['latency_s_p90'] * 1000:9.1f}  AUROC {res['auroc']:.3f}  fallback pairs {res['fallback_pairs']}")

    run("knn (baseline)", KNNEstimator())
    backend_kw = dict(max_new_tokens=args.new_tokens, temperature=0, batch_size=len(test.models))
    shared = TransformersBackend(tiny, **backend_kw)
    run("reasoning, tiny LM, prefix cache", ReasoningEstimator(shared, retries=0))
    # prefix cache on vs off, A/B interleaved per decision (alternating order) so that load from
    # other jobs on the machine hits both alike; the ratio is taken per decision
    plain = TransformersBackend(tiny, reuse_prefix_cache=False, **backend_kw)
    probe = ReasoningEstimator(shared)
    ab = []
    for r in range(min(args.questions, len(test))):
        prompts = probe.prompts([test.questions[r]], history.anchors(test_embs[r : r + 1], test.models, probe.k), history)
        pair = {}
        for name in (("on", "off") if r % 2 == 0 else ("off", "on")):
            t0 = time.perf_counter()
            (shared if name == "on" else plain).generate(prompts)
            pair[name] = time.perf_counter() - t0
        ab.append(pair)
    on = np.array([p["on"] for p in ab])
    off = np.array([p["off"] for p in ab])
    runs["prefix cache A/B"] = {
        "on_s_median": float(np.median(on)),
        "off_s_median": float(np.median(off)),
        "off_over_on_median": float(np.median(off / on)),
        "n": len(ab),
    }
    print(f"prefix cache A/B (generation only)  on {np.median(on) * 1000:.1f} ms, off {np.median(off) * 1000:.1f} ms, "
          f"off/on per decision median {np.median(off / on):.2f}x")

    # prompt sizes the tiny tokenizer sees (real Qwen tokenizers compress better)
    est = ReasoningEstimator(shared)
    q = [test.questions[0]]
    prompts = est.prompts(q, history.anchors(test_embs[:1], test.models, est.k), history)
    n_tok = [len(shared.tokenizer(shared.render(p))["input_ids"]) for p in prompts]

    base = runs["knn (baseline)"]["latency_s_median"]
    ratio = runs["reasoning, tiny LM, prefix cache"]["latency_s_median"] / base
    cache_gain = runs["prefix cache A/B"]["off_over_on_median"]
    print(f"reasoning (tiny) / kNN latency per decision: {ratio:.0f}x; prefix cache off / on: {cache_gain:.2f}x")
    print(f"prompt tokens per candidate (tiny tokenizer): median {int(np.median(n_tok))}")
    out = {
        "what": "predictor latency per routing decision (1 query x 9 candidates), llmrouter-9 test split",
        "questions": args.questions,
        "new_tokens": args.new_tokens,
        "torch_threads": args.threads,
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread(s), shared with other jobs",
        "prompt_tokens_median": int(np.median(n_tok)),
        "runs": runs,
        "ratio_reasoning_over_knn": ratio,
        "ratio_prefix_cache_off_over_on": cache_gain,
        "note": "random tiny model: quality figures (AUROC) are the kNN fallback's; latency is the point",
    }
    path = ROOT / "benchmarks" / "results" / "reasoner_latency.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
