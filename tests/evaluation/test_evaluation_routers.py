"""Routers under evaluation: splits hide what they must, every router stays under the oracle, the
SCOPE adapter decides exactly what `Router.route` decides, and learners learn."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_evaluation import synthetic

from scope_shared.errors import ScopeError
from scope_shared.estimators import KNNEstimator
from scope_shared.evaluation import model_points, oracle_upper_bound, reference
from scope_shared.evaluation.closed_set import EmbeddingKNNRouter, LogisticRouter, MatrixFactorizationRouter, MLPRouter
from scope_shared.evaluation.harness import evaluate, make_split
from scope_shared.evaluation.routers import AlwaysRouter, OracleRouter, RandomMixRouter, lambda_grid
from scope_shared.evaluation.scope_routers import SCOPE_ESTIMATORS, ScopeRouter, register_estimator

ALL = [RandomMixRouter(), AlwaysRouter("cheapest"), AlwaysRouter("bsm"), LogisticRouter(), MLPRouter(),
       EmbeddingKNNRouter(), MatrixFactorizationRouter(), ScopeRouter("scope-knn")]


def test_split_hides_test_text_and_unseen_outcomes():
    table, embs = synthetic()
    split, truth = make_split(table, embs, seed=3, unseen=["strong", "cheap"], n_anchors=20)
    assert not set(split.hist_questions) & set(split.test_questions)
    assert len(split.hist_questions) + len(split.test_questions) == len(table)
    known = split.known
    assert known[:, 0].sum() == known[:, 2].sum() == 20
    assert np.array_equal(known[:, 0], known[:, 2])  # the same anchor questions for every held-out model
    assert known[:, 1].all()
    assert np.isnan(split.hist_tokens[~known]).all()  # no length leaks either
    assert truth.scores.shape == (len(split.test_questions), 3)
    with pytest.raises(ScopeError):
        make_split(table, embs, 0, unseen=["nope"], n_anchors=5)
    with pytest.raises(ScopeError):
        make_split(table, embs, 0, unseen=["strong"])


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["seen", "unseen"])
def test_every_router_stays_under_the_oracle_at_every_cost(setting):
    table, embs = synthetic(50)
    unseen = ["mid"] if setting == "unseen" else []
    split, truth = make_split(table, embs, seed=1, unseen=unseen, n_anchors=30 if unseen else None)
    ref = reference(split.models, truth.scores, truth.costs)
    lambdas = np.concatenate([[0.0], np.geomspace(1e-2, 1e8, 200)])
    orc = evaluate(OracleRouter(truth.scores, truth.costs), split, truth, ref)
    for router in ALL:
        res = evaluate(router, split, truth, ref, models=unseen or None)
        for p in res.points:
            assert p.accuracy <= oracle_upper_bound(truth.scores, truth.costs, p.cost, lambdas) + 1e-9, router.name
        assert res.figures["max_accuracy"] <= max(q.accuracy for q in orc.points) + 1e-12
        assert res.figures["auc"] <= orc.figures["auc"] + 1e-12


def test_always_routers_give_exactly_a_models_point():
    table, embs = synthetic()
    split, truth = make_split(table, embs, seed=0)
    pts = model_points(truth.scores, truth.costs)
    for which, j in (("cheapest", 0), ("bsm", 2)):
        res = evaluate(AlwaysRouter(which), split, truth, cpu_usd_per_hour=0.0)
        assert res.points == [pts[j]]  # exactly that model's point
        priced = evaluate(AlwaysRouter(which), split, truth)
        assert priced.points[0].cost == pts[j].cost + priced.overhead_usd  # net of its own CPU time
    mix = RandomMixRouter().route(split)
    assert set(np.unique(mix.choices[0])) == {0} and set(np.unique(mix.choices[-1])) == {2}


def test_auc_without_cpu_prices_the_decisions_alone():
    table, embs = synthetic()
    split, truth = make_split(table, embs, seed=0)
    ref = reference(split.models, truth.scores, truth.costs)
    free = evaluate(ScopeRouter("scope-knn"), split, truth, ref, cpu_usd_per_hour=0.0)
    slow = evaluate(ScopeRouter("scope-knn"), split, truth, ref, embed_s_per_query=5.0)
    # a slow embedding costs area under the priced curve, not under the decisions' own
    assert slow.figures["auc"] < slow.figures["auc_without_cpu"]
    assert slow.figures["auc_without_cpu"] == pytest.approx(free.figures["auc"])
    assert free.figures["auc_without_cpu"] == pytest.approx(free.figures["auc"])


def test_scope_adapter_sweep_matches_router_route():
    table, embs = synthetic(40)
    split, _ = make_split(table, embs, seed=0)
    sr = ScopeRouter("scope-knn")
    sr.fit(split)
    out = sr.route(split)
    for i in (0, 5, len(split.lambdas) // 2, len(split.lambdas) - 2):
        lam = float(split.lambdas[i])
        decisions = sr.router.route_batch(split.test_questions, knob={"tradeoff": lam})
        assert [split.models.index(d.model) for d in decisions] == list(out.choices[i])


def test_learners_learn_topic_skills():
    table, embs = synthetic()
    split, truth = make_split(table, embs, seed=2)
    mix = evaluate(RandomMixRouter(), split, truth)
    for router in (LogisticRouter(), MLPRouter(), EmbeddingKNNRouter(), MatrixFactorizationRouter(), ScopeRouter("scope-knn")):
        res = evaluate(router, split, truth)
        assert res.figures["auroc"] > 0.8, router.name
        assert res.figures["auc"] > mix.figures["auc"] + 0.05, router.name


def test_registry_plugs_in_an_estimator_with_one_line():
    register_estimator("scope-knn-k5", lambda history, split: KNNEstimator(k=5))
    try:
        table, embs = synthetic(30)
        split, truth = make_split(table, embs, seed=0)
        res = evaluate(ScopeRouter("scope-knn-k5"), split, truth)
        assert res.kind == "scope" and res.name == "scope-knn-k5"
        assert res.figures["auroc"] is not None
    finally:
        SCOPE_ESTIMATORS.pop("scope-knn-k5")
    with pytest.raises(ScopeError):
        ScopeRouter("not-registered")
    with pytest.raises(ScopeError):
        register_estimator("", None)


def test_lambda_grid_needs_positive_costs():
    g = lambda_grid(np.array([1e-4, 1e-3]))
    assert g[0] == 0 and np.isinf(g[-1]) and np.all(np.diff(g) > 0)
    with pytest.raises(ScopeError):
        lambda_grid(np.array([0.0, 0.0]))
