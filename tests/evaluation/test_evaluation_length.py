"""Length prediction on real-usage-shaped data: anchors near the query beat a per-model median when
length depends on the kind of question, also for a model known only by its anchors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from fixtures_evaluation import synthetic

from scope_shared.evaluation.length import length_run


def test_length_run_beats_the_median_when_length_depends_on_topic():
    table, embs = synthetic(60)
    rng = np.random.default_rng(0)
    topic_len = {"math": 900.0, "code": 300.0, "trivia": 30.0}
    base = np.array([topic_len[b] for b in table.benchmarks])[:, None] * np.array([1.0, 1.5, 2.0])[None, :]
    toks = base * rng.uniform(0.9, 1.1, base.shape)
    costs = np.stack([table.cards[m].cost(10, toks[:, j]) for j, m in enumerate(table.models)], 1)
    table = replace(table, output_tokens=toks, cost=costs)
    seen = length_run(table, embs, seed=0, estimators=["scope-knn"])
    assert seen["scope-knn"]["median_abs_rel_error"] < 0.5 * seen["per-model-median"]["median_abs_rel_error"]
    assert seen["scope-knn"]["within_band"] >= seen["per-model-median"]["within_band"]
    assert seen["scope-knn"]["cost_mare"] < seen["per-model-median"]["cost_mare"]
    # lengths only (no correctness), one model known only by 30 anchors
    lengths_only = replace(table, scores=np.full(table.scores.shape, np.nan), cost=None)
    unseen = length_run(lengths_only, embs, seed=1, unseen=["strong"], n_anchors=30, estimators=["scope-knn"])
    assert unseen["scope-knn"]["n"] == unseen["per-model-median"]["n"] > 0
    assert unseen["scope-knn"]["median_abs_rel_error"] < unseen["per-model-median"]["median_abs_rel_error"]
    assert "cost_mare" not in unseen["scope-knn"]
