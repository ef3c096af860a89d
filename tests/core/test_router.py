"""Router and policies on the toy history, where the right answer for each knob is known."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CARDS, toy_embedder, toy_history

from scope_shared import BudgetExceeded, KNNEstimator, Ledger, ModelCard, Router
from scope_shared.errors import InvalidCardError, InvalidKnobError
from scope_shared.routing import make_knob
from scope_shared.routing.knobs import DEFAULT_ACCURACY_MARGIN
from scope_shared.routing.policies import rank

MATH, CODE, TRIVIA = "a math problem to solve", "write code for a parser", "trivia about rivers"


def test_estimates_follow_the_anchors(router):
    est = router.estimate(MATH)
    assert est["strong"].p_correct > 0.9 and est["cheap"].p_correct < 0.15
    assert est["cheap"].expected_output_tokens == pytest.approx(50, rel=1e-3)
    assert est["strong"].expected_output_tokens == pytest.approx(400, rel=1e-3)
    card = {c.name: c for c in CARDS}["strong"]
    e = est["strong"]
    assert e.expected_cost == pytest.approx(card.cost(e.input_tokens, e.expected_output_tokens))
    assert e.n_anchors == 40


@pytest.mark.parametrize(
    "query,expected",
    [(MATH, "strong"), (CODE, "mid"), (TRIVIA, "cheap")],
)
def test_min_accuracy_picks_cheapest_that_reaches_target(router, query, expected):
    d = router.route(query, knob={"min_accuracy": 0.8})
    assert d.model == expected
    assert d.ranking[0] == expected and set(d.ranking) == {"cheap", "mid", "strong"}
    assert "cheapest predicted to reach 0.80" in d.explanation


def test_min_accuracy_unreachable_gives_most_accurate(router):
    d = router.route(TRIVIA, knob={"min_accuracy": 1.0})
    assert d.model == max(d.estimates, key=lambda m: d.estimates[m].p_correct)


def test_tradeoff_zero_is_most_accurate_and_large_is_cheapest(router):
    assert router.route(MATH, knob={"tradeoff": 0.0}).model == "strong"
    assert router.route(MATH, knob={"tradeoff": 1e9}).model == "cheap"
    # moderate λ: strong's extra accuracy on math is worth its cost; mid's small edge on trivia is not
    assert router.route(MATH, knob={"tradeoff": 10.0}).model == "strong"
    assert router.route(TRIVIA, knob={"tradeoff": 0.0}).model != "cheap"
    assert router.route(TRIVIA, knob={"tradeoff": 1000.0}).model == "cheap"


def test_max_cost_takes_most_accurate_that_fits(router):
    est = router.estimate(MATH)
    between = (est["mid"].expected_cost + est["strong"].expected_cost) / 2
    assert router.route(MATH, knob={"max_cost": between}).model == "mid"
    assert router.route(MATH, knob={"max_cost": 1.0}).model == "strong"
    # nothing fits: the ranking puts the cheapest first
    assert router.route(MATH, knob={"max_cost": 0.0}).ranking[0] == "cheap"


def test_alpha_extremes(router):
    assert router.route(MATH, knob={"alpha": 1.0}).model == "strong"
    assert router.route(MATH, knob={"alpha": 0.0}).model == "cheap"


def test_ledger_remaining_shapes_the_decision(router):
    est = router.estimate(MATH)
    ledger = Ledger(budget=est["mid"].expected_cost * 1.5)
    d = router.route(MATH, knob={"tradeoff": 0.0}, ledger=ledger)
    assert d.model == "mid" and d.budget_left == pytest.approx(ledger.budget)
    assert d.ranking[-1] == "strong"  # does not fit: last


def test_spent_budget_falls_back_to_cheapest_or_raises(router):
    spent = Ledger(budget=1e-9, mode="soft")
    d = router.route(MATH, knob={"tradeoff": 0.0}, ledger=spent)
    assert d.model == "cheap" and d.fallback_to_cheapest and "budget" in d.explanation
    with pytest.raises(BudgetExceeded, match="budget spent"):
        router.route(MATH, knob={"tradeoff": 0.0}, ledger=Ledger(budget=1e-9, mode="raise"))


def test_batch_matches_single(router):
    qs = [MATH, CODE, TRIVIA]
    batch = router.route_batch(qs, knob={"min_accuracy": 0.8})
    assert [d.model for d in batch] == [router.route(q, knob={"min_accuracy": 0.8}).model for q in qs]


def test_candidates_subset(router):
    d = router.route(MATH, knob={"tradeoff": 0.0}, candidates=["cheap", "mid"])
    assert d.model in {"cheap", "mid"} and set(d.ranking) == {"cheap", "mid"}


def test_default_knob_and_per_call_override():
    r = Router(CARDS, toy_history(), embedder=toy_embedder(), default_knob={"min_accuracy": 0.8})
    assert r.route(CODE).model == "mid"
    assert r.route(CODE, knob={"tradeoff": 0.0}).model == "strong"  # per call wins (ties on p: strong 1.0)


def test_rank_is_pure_and_puts_unaffordable_last():
    p = np.array([0.9, 0.5, 0.7])
    cost = np.array([3.0, 1.0, 2.0])
    assert rank(make_knob("tradeoff", 0.0), p, cost).tolist() == [0, 2, 1]
    assert rank(make_knob("tradeoff", 0.0), p, cost, cap=2.5).tolist() == [2, 1, 0]
    assert rank(make_knob("min_accuracy", 0.6), p, cost).tolist() == [2, 0, 1]
    assert rank(make_knob("max_cost", 1.5), p, cost).tolist() == [1, 2, 0]


def test_accuracy_margin_picks_the_cheapest_within_the_margin_of_the_best():
    p = np.array([0.90, 0.50, 0.89])
    cost = np.array([3.0, 1.0, 2.0])
    margin = lambda m: make_knob("accuracy_margin", m)  # noqa: E731
    assert rank(margin(0.02), p, cost).tolist() == [2, 0, 1]  # 0.89 is within 0.02 of 0.90, and cheaper
    assert rank(margin(0.0), p, cost).tolist() == [0, 2, 1]  # no margin: the most accurate
    assert rank(margin(0.5), p, cost).tolist() == [1, 2, 0]  # everyone qualifies: the cheapest
    # the best is measured per query: the same margin under lower accuracies
    assert rank(margin(0.02), p - 0.4, cost).tolist() == [2, 0, 1]
    # a cap (max_cost, or a ledger) puts what does not fit last, qualifying or not
    assert rank(margin(0.02), p, cost, cap=1.5).tolist() == [1, 2, 0]


def test_accuracy_margin_is_the_default_and_explains_itself(history, embedder):
    router = Router(CARDS, history, embedder=embedder, estimator=KNNEstimator())  # the kNN figures below
    m = DEFAULT_ACCURACY_MARGIN
    assert router.default_knob == make_knob("accuracy_margin", m)
    d = router.route(MATH)  # only strong knows math
    assert d.model == "strong" and d.knob == {"accuracy_margin": m}
    assert "the best p_correct" in d.explanation
    assert "within 0.10 of the best p_correct" in router.route(TRIVIA, knob={"accuracy_margin": 0.1}).explanation
    # predicted: cheap 0.92 / mid 0.97 / strong 1.00 on trivia, mid 0.95 / strong 1.00 on code
    assert router.route(TRIVIA, knob={"accuracy_margin": 0.02}).model == "strong"  # 0.02 admits no one else
    assert router.route(TRIVIA, knob={"accuracy_margin": 0.1}).model == "cheap"
    assert router.route(CODE, knob={"accuracy_margin": 0.1}).model == "mid"
    assert router.route(MATH, knob={"accuracy_margin": 1.0}).model == "cheap"
    with pytest.raises(InvalidKnobError):
        make_knob("accuracy_margin", 1.5)
    with pytest.raises(InvalidKnobError):
        router.route(MATH, knob={"accuracy_margin": 0.1, "min_accuracy": 0.5})
    with pytest.raises(InvalidKnobError, match="unknown knob"):
        router.route(MATH, knob={"min_acuracy": 0.5})


def test_new_model_joins_without_retraining(router):
    """A model whose 20 outcomes show it is best (and cheap) on math gets math queries."""
    outcomes = {f"math question number {i}": {"correct": 1.0, "output_tokens": 60} for i in range(20)}
    router.add_model(ModelCard(name="mathwiz", input_price=0.1, output_price=0.2), outcomes)
    assert router.route(MATH, knob={"min_accuracy": 0.8}).model == "mathwiz"
    with pytest.raises(InvalidCardError, match="already"):
        router.add_model(ModelCard(name="mathwiz", input_price=0, output_price=0), outcomes)


def test_feedback_changes_later_estimates(router):
    before = router.estimate("a geography question")["cheap"].p_correct
    for i in range(30):
        router.record_outcome(f"geography question {i}", "cheap", 0.0, output_tokens=40)
    after = router.estimate("a geography question")["cheap"].p_correct
    assert after < before - 0.2


def test_knn_tuning_chooses_from_grid(history):
    from scope_shared.estimators import tune_knn

    est, results = tune_knn(history, ks=(3, 10), temperatures=(0.1, 1.0), prior_weights=(0.0,), sample_size=30)
    assert isinstance(est, KNNEstimator) and len(results) == 4
    assert results[f"k={est.k},t={est.temperature},prior={est.prior_weight}"] == min(results.values())
