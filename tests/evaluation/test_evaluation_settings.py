"""Evaluation settings: ood hides whole benchmarks, onboarding gives held-out models exactly the
suggested anchors, the prior router is the history's accuracy-cost frontier, and held-out models'
level error and AUROC are measured one by one."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_evaluation import TOPICS, synthetic

from scope_shared.cards import ModelCard
from scope_shared.data import RoutingTable
from scope_shared.embedders import FunctionEmbedder
from scope_shared.errors import ScopeError
from scope_shared.evaluation.harness import evaluate
from scope_shared.evaluation.prediction import per_model_quality
from scope_shared.evaluation.routers import PriorRouter
from scope_shared.evaluation.scope_routers import ScopeRouter
from scope_shared.evaluation.settings import (
    Setting,
    n_ood_benchmarks,
    ood_benchmarks,
    setting_split,
)
from scope_shared.onboarding import suggest_questions


def many_benchmarks(n_bench: int = 9, per: int = 30, seed: int = 0) -> tuple[RoutingTable, np.ndarray]:
    """A table with ``n_bench`` benchmarks (each its own embedding direction) and two models."""
    rng = np.random.default_rng(seed)
    qs, bench, embs, rows = [], [], [], []
    for b in range(n_bench):
        for i in range(per):
            qs.append(f"b{b} question {i}")
            bench.append(f"bench{b}")
            v = 0.2 * rng.standard_normal(n_bench)
            v[b] += 1.0
            embs.append(v / np.linalg.norm(v))
            rows.append([float(rng.random() < 0.3 + 0.05 * b), float(rng.random() < 0.8)])
    cards = {"a": ModelCard(name="a", input_price=0.1, output_price=0.1),
             "b": ModelCard(name="b", input_price=1.0, output_price=1.0)}
    return RoutingTable("many", qs, bench, ["a", "b"], np.array(rows), cards), np.array(embs, np.float32)


def test_ood_leaves_every_question_of_the_drawn_benchmarks_out_of_the_history():
    table, embs = many_benchmarks()
    assert n_ood_benchmarks(9) == 3 and n_ood_benchmarks(14) == 4 and n_ood_benchmarks(3) == 1
    draws = set()
    for seed in range(6):
        drawn = setting_split(table, embs, Setting("ood"), seed)
        out = drawn.held_out_benchmarks
        assert len(out) == 3 and out == ood_benchmarks(table.benchmarks, seed)
        assert not set(drawn.split.hist_benchmarks) & set(out)  # no question of a left-out benchmark
        test_bench = {table.benchmarks[table.questions.index(q)] for q in drawn.split.test_questions}
        assert test_bench == set(out)
        assert len(drawn.split.hist_questions) + len(drawn.split.test_questions) == len(table)
        assert drawn.split.known.all()  # every model keeps every outcome it has on the kept benchmarks
        draws.add(tuple(out))
    assert len(draws) > 1  # seeds draw different benchmarks
    three, three_embs = synthetic(20)  # three benchmarks: one is left out
    assert len(setting_split(three, three_embs, Setting("ood"), 0).held_out_benchmarks) == 1
    with pytest.raises(ScopeError):
        n_ood_benchmarks(1)


@pytest.mark.parametrize("n", [5, 12])
def test_onboarding_gives_held_out_models_exactly_the_suggested_anchors(n):
    table, embs = synthetic(40)
    drawn = setting_split(table, embs, Setting("onboarding", ("mid", "cheap"), n), seed=2)
    split = drawn.split
    known = split.known
    for m in ("mid", "cheap"):
        assert known[:, split.models.index(m)].sum() == n
        assert np.array_equal(np.flatnonzero(known[:, split.models.index(m)]), np.sort(drawn.anchors))
    assert known[:, split.models.index("strong")].all()
    # the anchors are what suggest_questions picks from the known model's outcomes on the history part
    history = RoutingTable(
        "h", split.hist_questions, split.hist_benchmarks, ["strong"],
        split.hist_scores[:, [split.models.index("strong")]], {"strong": table.cards["strong"]},
    ).to_history(FunctionEmbedder(lambda t: None, embs.shape[1], name="pre"), show_progress=False,
                 embeddings=split.hist_emb)
    assert sorted(s.question_id for s in suggest_questions(history, n, seed=2)) == sorted(drawn.anchors.tolist())
    assert Setting("onboarding", ("mid",), n).name == f"onboarding-n{n}"
    with pytest.raises(ScopeError):
        Setting("onboarding", ("mid",), None)
    with pytest.raises(ScopeError):
        Setting("sideways")  # type: ignore[arg-type]


def test_prior_router_picks_the_most_accurate_affordable_model_ignoring_the_question():
    table, embs = synthetic(60)
    # a fourth model, dearer than "mid" and worse than it: never on the frontier
    worse = np.where(np.random.default_rng(5).random(len(table)) < 0.2, 1.0, 0.0)
    cards = {**table.cards, "dear": ModelCard(name="dear", input_price=5.0, output_price=10.0)}
    table = RoutingTable("four", table.questions, table.benchmarks, [*table.models, "dear"],
                         np.column_stack([table.scores, worse]), cards, output_tokens=None)
    drawn = setting_split(table, embs, Setting("seen"), seed=0)
    split, truth = drawn.split, drawn.truth
    out = PriorRouter().route(split)
    picked = [int(c[0]) for c in out.choices]
    assert all(len(set(c.tolist())) == 1 for c in out.choices)  # one model for every query
    assert picked == [split.models.index(m) for m in ("cheap", "mid", "strong")]  # cheapest first
    assert np.allclose(out.p_correct, split.history_accuracy()[None, :])
    res = evaluate(PriorRouter(), split, truth)
    assert res.figures["max_accuracy"] == pytest.approx(np.nanmean(truth.scores[:, split.models.index("strong")]))
    assert res.figures["auroc_per_model"] == pytest.approx(0.5)  # it knows levels, nothing per question


def test_held_out_models_get_level_error_and_auroc_one_by_one():
    p = np.array([[0.9, 0.2], [0.8, 0.3], [0.1, 0.4], [0.2, 0.1]])
    y = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    q = per_model_quality(p, y, ["x", "z"])
    assert q["x"]["bias"] == pytest.approx(0.5 - 0.5) and q["x"]["auroc"] == 1.0
    assert q["z"]["bias"] == pytest.approx(0.25 - 0.5) and q["z"]["auroc"] == pytest.approx(0.25)  # 1 of 4 pairs ranked right
    with pytest.raises(ScopeError):
        per_model_quality(p, y, ["x"])
    table, embs = synthetic(40)
    drawn = setting_split(table, embs, Setting("unseen", ("mid",), 30), seed=1)
    res = evaluate(ScopeRouter("scope-knn"), drawn.split, drawn.truth, models=["mid"])
    assert list(res.per_model) == ["mid"]
    assert res.figures["abs_bias_mean"] == pytest.approx(abs(res.per_model["mid"]["bias"]))
    assert res.figures["auroc_per_model"] > 0.7  # "mid" is good at code and trivia, not maths: learnable
    assert set(TOPICS) == set(drawn.split.hist_benchmarks)
