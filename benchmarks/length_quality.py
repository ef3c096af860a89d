"""The ``"length"`` section of the routing-quality benchmark (also runnable alone):

- routerarena-2: output tokens and cost per call of the test part, predicted from the history part;
- alpacaeval-lengths: output tokens of models left out of training, from 50 anchor lengths each.

    PYTHONPATH=. HF_HUB_OFFLINE=1 SCOPE_DATA_DIR=../shared/data python benchmarks/length_quality.py
"""

from __future__ import annotations

import json
import sys

import numpy as np

from scope_shared.data import dataset_path, load_alpacaeval_lengths, load_routerarena2
from scope_shared.embedders import default_embedder, embed_with_cache
from scope_shared.evaluation.length import length_run

#: held-out AlpacaEval models: spread over the length range (short to verbose), chosen by name up front
ALPACA_UNSEEN = ["gpt-3.5-turbo-0613", "gpt4_1106_preview", "Mixtral-8x7B-Instruct-v0.1", "claude-2",
                 "Meta-Llama-3-8B-Instruct", "Qwen1.5-72B-Chat", "vicuna-13b-v1.3", "zephyr-7b-beta"]
ALPACA_N_ANCHORS = 50
ALPACA_OTHERS = 30  # other models kept in the history (first by name), for speed


def _aggregate(runs: list[dict]) -> dict:
    out = {}
    for name in runs[0]:
        row = {}
        for key in runs[0][name]:
            vals = [r[name][key] for r in runs if r[name].get(key) is not None]
            row[key] = float(np.mean(vals)) if vals else None
            row[f"{key}_std"] = float(np.std(vals)) if vals else None
        out[name] = row
    return out


def length_sections(seeds: list[int], embedder=None) -> dict:
    embedder = embedder or default_embedder()
    out = {}
    arena = load_routerarena2(dataset_path("routerarena-2"))
    embs = embed_with_cache(embedder, arena.questions, show_progress=True)
    runs = [length_run(arena, embs, s, embedder_name=embedder.name) for s in seeds]
    out["routerarena-2"] = {
        "setting": "seen models, real provider output tokens and per-call USD; test part of each split",
        "estimators": _aggregate(runs),
    }
    full = load_alpacaeval_lengths(dataset_path("alpacaeval-lengths"))
    unseen = [m for m in ALPACA_UNSEEN if m in full.models]
    others = [m for m in full.models if m not in unseen][:ALPACA_OTHERS]
    alpaca = full.select_models(unseen + others)
    embs = embed_with_cache(embedder, alpaca.questions, show_progress=True)
    runs = [length_run(alpaca, embs, s, unseen=unseen, n_anchors=ALPACA_N_ANCHORS, embedder_name=embedder.name)
            for s in seeds]
    out["alpacaeval-lengths"] = {
        "setting": f"unseen models {unseen}, {ALPACA_N_ANCHORS} anchor lengths each; tokens = chars/4",
        "estimators": _aggregate(runs),
    }
    return out


if __name__ == "__main__":
    seeds = [int(s) for s in sys.argv[1:]] or [0, 1, 2, 3, 4]
    res = length_sections(seeds)
    print(json.dumps(res, indent=1))
