"""Shared fixture of the evaluation tests: a synthetic routing table whose right answers are known.

Three topics (math, code, trivia) with embeddings near one axis each; "cheap" is good at trivia only,
"mid" at code and trivia, "strong" at everything; output tokens grow with the model.
"""

from __future__ import annotations

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.data import RoutingTable

TOPICS = ["math", "code", "trivia"]
SKILL = {"cheap": [0.05, 0.1, 0.9], "mid": [0.1, 0.85, 0.9], "strong": [0.9, 0.9, 0.95]}
PRICES = {"cheap": (0.1, 0.2), "mid": (1.0, 2.0), "strong": (10.0, 30.0)}


def synthetic(n_per_topic: int = 80, seed: int = 0) -> tuple[RoutingTable, np.ndarray]:
    rng = np.random.default_rng(seed)
    qs, bench, embs, rows = [], [], [], []
    for t, topic in enumerate(TOPICS):
        for i in range(n_per_topic):
            qs.append(f"{topic} question number {i}")
            bench.append(topic)
            v = 0.3 * rng.standard_normal(8)
            v[t] += 1.0
            embs.append(v / np.linalg.norm(v))
            rows.append([float(rng.random() < SKILL[m][t]) for m in SKILL])
    models = list(SKILL)
    cards = {m: ModelCard(name=m, input_price=PRICES[m][0], output_price=PRICES[m][1]) for m in models}
    toks = np.tile([50.0, 100.0, 400.0], (len(qs), 1)) * rng.uniform(0.5, 1.5, (len(qs), 1))
    table = RoutingTable("synthetic", qs, bench, models, np.array(rows), cards, output_tokens=toks)
    return table, np.array(embs, dtype=np.float32)
