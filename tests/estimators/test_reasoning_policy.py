"""The paper's trapezoid length reward, GRPO reward functions, and the two-stage scorer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fixtures_reasoning import make_history

from scope_shared.budget.ledger import Ledger
from scope_shared.errors import ScopeError
from scope_shared.estimators.reasoning.rewards import (
    correctness_reward,
    format_reward,
    length_reward,
    trapezoid_length_reward,
)
from scope_shared.history import Anchors
from scope_shared.routing.paper_scorer import (
    AnchorStats,
    TwoStageScorer,
    anchor_stats,
    budget_alpha,
    minmax,
    stage_two,
    two_stage_scores,
)
from scope_shared.routing.policies import cap_first
from scope_shared.routing.router import Router


@pytest.mark.parametrize(
    "true, pred, want",
    [
        (150, 50, 1.0), (150, 250, 1.0), (150, 150, 1.0),  # full within max(100, 0.25 l)
        (150, 0, 0.5), (150, 300, 0.5),                   # halfway down the slope
        (150, 350, 0.0), (150, 1000, 0.0),                # zero at >= max(200, 0.5 l) away
        (1000, 750, 1.0), (1000, 1250, 1.0),
        (1000, 500, 0.0), (1000, 1500, 0.0), (1000, 400, 0.0),
        (1000, 625, 0.5), (1000, 1375, 0.5),
    ],
)
def test_trapezoid_reward_matches_paper_figure(true, pred, want):
    assert math.isclose(trapezoid_length_reward(pred, true), want, abs_tol=1e-12)


def test_reward_functions_on_completions():
    good = "Analysis: similar anchors passed.\nPredicted Performance: {len: 160, correct: yes}"
    bare = "Predicted Performance: {len: 900, correct: no}"
    conv = [{"role": "assistant", "content": good}]
    bad = "no idea"
    assert format_reward([good, bare, conv, bad]) == [1.0, 0.5, 1.0, 0.0]
    assert correctness_reward([good, bare, bad], true_correct=[True, True, False]) == [1.0, 0.0, 0.0]
    assert length_reward([good, bare, bad], true_length=[150, 150, 150]) == [1.0, 0.0, 0.0]


def hand_anchors() -> Anchors:
    """One query, models A (cheap) and B (10x output price); two anchors with sims 1.0 and 0.5."""
    sims = np.array([[[1.0, 0.5], [1.0, 0.5]]], np.float32)
    scores = np.array([[[1, 0], [1, 1]]], np.float32)
    tokens = np.full((1, 2, 2), 100.0, np.float32)
    return Anchors(("A", "B"), np.array([[[0, 1], [0, 1]]]), sims, scores, tokens, np.ones((1, 2, 2), bool))


def test_two_stage_scorer_hand_example():
    stats = anchor_stats(hand_anchors(), input_price=np.zeros(2), output_price=np.array([1.0, 10.0]))
    # sim^2 weights 1 and 0.25: accuracy A = 1/1.25, B = 1; cost = 100 tokens x price
    assert np.allclose(stats.accuracy, [[0.8, 1.0]])
    assert np.allclose(stats.cost, [[1e-4, 1e-3]])
    p = np.array([[0.6, 0.9]])
    cost = np.array([[1e-4, 1e-3]])
    # alpha 0.5: gamma 4, w 0.225; s1 = (0.5, 0.5), s2 = (0.3 + 0.5, 0.45)
    s = two_stage_scores(0.5, p, cost, stats)
    assert np.allclose(s, [[0.225 * 0.5 + 0.775 * 0.8, 0.225 * 0.5 + 0.775 * 0.45]])
    # alpha 1: gamma 2, w 0.3; only accuracy counts
    s = two_stage_scores(1.0, p, cost, stats)
    assert np.allclose(s, [[0.7 * 0.6, 0.3 + 0.7 * 0.9]])
    assert two_stage_scores(0.0, p, cost, stats).argmax() == 0


def test_stage_two_normalises_cost_over_the_batch_and_stage_one_per_query():
    p = np.array([[0.5, 0.5], [0.5, 0.5]])
    cost = np.array([[1.0, 2.0], [3.0, 5.0]])
    s = stage_two(0.0, p, cost)  # alpha 0: (1 - c)^6 with c over all four numbers
    assert np.allclose(s, (1 - np.array([[0, 0.25], [0.5, 1.0]])) ** 6)
    assert np.allclose(minmax(np.log(cost), axis=-1), [[0, 1], [0, 1]])
    assert np.allclose(minmax(np.array([[2.0, 2.0], [np.nan, 1.0]])), [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ScopeError):
        two_stage_scores(1.5, p, cost, None)


def test_budget_mode_uses_predictions_only():
    p = np.array([[0.5, 0.9], [0.4, 0.8], [0.7, 0.75]])
    cost = np.array([[0.01, 0.1], [0.01, 0.1], [0.01, 0.1]])
    stats = AnchorStats(p.copy(), cost.copy())
    tight = budget_alpha(0.035, p, cost, stats)
    assert tight.fits and tight.predicted_cost <= 0.035 and math.isclose(tight.predicted_accuracy, (0.5 + 0.4 + 0.7) / 3)
    roomy = budget_alpha(1.0, p, cost, stats)
    assert roomy.fits and math.isclose(roomy.predicted_accuracy, (0.9 + 0.8 + 0.75) / 3)
    assert roomy.alpha > tight.alpha and len(roomy.sweep) == 101
    broke = budget_alpha(0.001, p, cost, stats)
    assert not broke.fits and math.isclose(broke.predicted_cost, 0.03)
    with pytest.raises(ScopeError):
        budget_alpha(-1, p, cost, stats)


def test_cap_first():
    assert cap_first(np.array([2, 0, 1]), np.array([1.0, 5.0, 9.0]), cap=6.0).tolist() == [0, 1, 2]


def test_router_with_two_stage_scorer():
    hist, emb, cards = make_history()
    scorer = TwoStageScorer()
    router = Router(cards, hist, embedder=emb, batch_scorer=scorer)
    plain = Router(cards, hist, embedder=emb)
    qs = ["arithmetic sum of numbers item?", "chemistry gas reaction item 2?", "capital city of country?"]
    for alpha in (0.0, 0.6, 1.0):
        ds = router.route_batch(qs, knob={"alpha": alpha})
        est = plain.estimate_batch(qs)
        models = list(est[0])
        p = np.array([[e[m].p_correct for m in models] for e in est])
        cost = np.array([[e[m].expected_cost for m in models] for e in est])
        want = two_stage_scores(alpha, p, cost, scorer.stats(router, emb.embed(qs), models)).argmax(1)
        assert [d.model for d in ds] == [models[i] for i in want]
    # other knobs are untouched, and a ledger's cap still applies to the two-stage ranking
    assert router.route(qs[0], knob={"max_cost": 1.0}).model == plain.route(qs[0], knob={"max_cost": 1.0}).model
    cheap = min(cards, key=lambda c: c.output_price).name
    tiny = router.route(qs[0], knob={"alpha": 1.0}, ledger=Ledger(budget=router.estimate(qs[0])[cheap].expected_cost * 1.01))
    assert tiny.model == cheap
    choice = scorer.choose_alpha(router, qs, budget=1e9)
    assert choice.fits and 0.0 <= choice.alpha <= 1.0


def test_auroc_and_evaluation_hook():
    from langchain_core.language_models import FakeListChatModel

    from scope_shared.estimators.reasoning import LangChainBackend, ReasoningEstimator
    from scope_shared.estimators.reasoning.evaluation import evaluate_estimator
    from scope_shared.metrics import auroc

    assert auroc(np.array([0.1, 0.9, 0.5, 0.5]), np.array([0, 1, 1, 0])) == 0.875
    assert auroc(np.array([0.2, 0.3]), np.array([1, 1])) is None
    hist, emb, cards = make_history()
    qs = ["arithmetic sum of numbers item?", "chemistry gas reaction item?", "capital city of country?"]
    truth = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, np.nan]])
    tokens = np.array([[100.0, 500.0], [120.0, 700.0], [80.0, 400.0]])
    # the predictor says yes for the strong model (len 600) and no for the cheap one (len 100)
    fake = FakeListChatModel(responses=[
        "Analysis: a.\nPredicted Performance: {len: 100, correct: no}",
        "Analysis: b.\nPredicted Performance: {len: 600, correct: yes}",
    ])
    est = ReasoningEstimator(LangChainBackend(fake, max_concurrency=1), k=2)
    res = evaluate_estimator(est, hist, emb, qs, ["cheap-model", "strong-model"], truth, tokens, max_questions=2, seed=0)
    assert res["n_questions"] == 2 and res["fallback_pairs"] == 0
    assert res["latency_s_median"] > 0
    full = evaluate_estimator(est, hist, emb, qs, ["cheap-model", "strong-model"], truth, tokens, max_questions=None, show_progress=False)
    # pairs: cheap (1, 0, 1) predicted 0; strong (1, 1) predicted 1 -> positives 4, negatives 1
    assert full["n_pairs"] == 5 and math.isclose(full["auroc"], (2 * 1 + 2 * 0.5) / 4)
    assert math.isclose(full["length_mae"], (0 + 100 + 20 + 100 + 20 + 200) / 6)
