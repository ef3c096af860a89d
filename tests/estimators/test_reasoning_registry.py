"""The reasoning estimator inside the routing-quality benchmark's registry and harness."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_reasoning import make_tiny_lm, single_thread

from scope_shared.cards import ModelCard
from scope_shared.data import RoutingTable
from scope_shared.estimators.reasoning import ReasoningEstimator
from scope_shared.evaluation.scope_routers import REASONER_DIR_ENV as ENV_DIR, register_reasoning_estimator
from scope_shared.evaluation.harness import evaluate, make_split
from scope_shared.evaluation.scope_routers import SCOPE_ESTIMATORS, ScopeRouter


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


def small_table(n: int = 8) -> tuple[RoutingTable, np.ndarray]:
    rng = np.random.default_rng(0)
    topics = ["arithmetic sum of numbers", "capital city of country", "chemistry gas reaction"]
    qs, bench, embs, rows = [], [], [], []
    for t, topic in enumerate(topics):
        for i in range(n):
            qs.append(f"Question {i}: {topic} item {i}?")
            bench.append(topic)
            v = 0.3 * rng.standard_normal(8)
            v[t] += 1.0
            embs.append(v / np.linalg.norm(v))
            rows.append([float(rng.random() < 0.3 + 0.3 * t), float(rng.random() < 0.9)])
    cards = {"cheap-model": ModelCard(name="cheap-model", input_price=0.1, output_price=0.4),
             "strong-model": ModelCard(name="strong-model", input_price=3.0, output_price=15.0)}
    toks = np.tile([100.0, 600.0], (len(qs), 1))
    return RoutingTable("small", qs, bench, list(cards), np.array(rows), cards, output_tokens=toks), np.array(embs, np.float32)


def test_register_and_evaluate_in_the_harness(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DIR, raising=False)
    assert register_reasoning_estimator() is False and "scope-reasoning" not in SCOPE_ESTIMATORS
    tiny = make_tiny_lm(tmp_path / "tiny")
    monkeypatch.setenv(ENV_DIR, str(tiny))
    assert register_reasoning_estimator(name="scope-reasoning-tiny", max_new_tokens=4, temperature=0)
    try:
        table, embs = small_table()
        split, truth = make_split(table, embs, seed=0)
        router = ScopeRouter("scope-reasoning-tiny")
        res = evaluate(router, split, truth)
        assert isinstance(router.router.estimator, ReasoningEstimator)
        assert res.name == "scope-reasoning-tiny" and res.figures["auroc"] is not None
        # the random tiny model writes no prediction line: every estimate is kNN's, and says so
        est = router.router.estimate(split.test_questions[0])
        assert all("knn estimate used" in e.rationale for e in est.values())
    finally:
        SCOPE_ESTIMATORS.pop("scope-reasoning-tiny", None)
