"""Exploration: off unless asked; a model that got better is tried again and, after feedback, chosen;
explored choices keep to the knob's and the ledger's caps and to the budgeted share of calls."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CARDS, toy_embedder, toy_history

from scope_shared import KNNEstimator, Ledger, Router, ScopeError
from scope_shared.routing.exploration import Explorer

PRICE = {c.name: c for c in CARDS}


def make_router(explorer: Explorer | None = None) -> Router:
    # kNN: its local estimates are what the explorer's local correction is measured against
    return Router(CARDS, toy_history(), embedder=toy_embedder(), exploration=explorer, estimator=KNNEstimator())


def run_math_traffic(router: Router, calls: int, start: int = 0) -> list[str]:
    """Route maths questions at min_accuracy=0.8 and feed back the truth of today: "cheap" got
    better at maths (now always right), "mid" did not, "strong" still is right."""
    now_right = {"cheap": 1.0, "mid": 0.0, "strong": 1.0}
    picks = []
    for i in range(start, start + calls):
        q = f"math question asked live {i}"
        d = router.route(q, knob={"min_accuracy": 0.8})
        picks.append(d.model)
        router.record_outcome(q, d.model, now_right[d.model])
    return picks


def test_exploration_is_off_unless_asked():
    plain = make_router()
    assert plain.exploration is None
    picks = run_math_traffic(plain, 150)
    assert set(picks) == {"strong"}  # the improved cheap model is never tried again
    assert all("exploring" not in d.explanation for d in plain.route_batch([f"math q {i}" for i in range(20)]))
    none = Explorer(rate=0.0, evidence_half_life=1e-3, seed=0)
    assert set(run_math_traffic(make_router(none), 100)) == {"strong"} and none.explored == 0


def test_a_model_that_got_better_is_tried_again_and_then_chosen():
    explorer = Explorer(rate=0.1, evidence_half_life=10, drift_half_life=20, seed=3)
    router = make_router(explorer)
    picks = run_math_traffic(router, 400)
    first = picks.index("cheap")  # tried again, by exploration
    assert explorer.explored >= 1
    assert explorer.explored <= 0.1 * explorer.decisions  # never more than the budgeted share
    assert picks[-50:].count("cheap") >= 45, picks[first:first + 40]  # after feedback: the usual choice
    fresh = router.route_batch([f"another math question {i}" for i in range(10)], knob={"min_accuracy": 0.8})
    greedy = [d for d in fresh if "exploring" not in d.explanation]
    assert greedy and all(d.model == "cheap" for d in greedy)  # chosen on its corrected estimate
    # the correction is local: on code, where cheap is still bad, its estimate barely moves
    code = router.estimate("write code for a parser")["cheap"]
    assert explorer.correction("cheap", router.embedder.embed_one("write code for a parser")) < 0.05
    assert code.p_correct < 0.2


def test_explored_choices_keep_to_max_cost_and_the_ledger():
    explorer = Explorer(rate=1.0, evidence_half_life=1e-6, seed=1)  # every decision may explore, wide draws
    router = make_router(explorer)
    queries = [f"math question {i}" for i in range(120)] + [f"trivia question {i}" for i in range(120)]
    est = router.estimate("math question 0")
    cap = (est["mid"].expected_cost + est["strong"].expected_cost) / 2  # strong never fits
    picks = [d.model for d in router.route_batch(queries, knob={"max_cost": cap})]
    assert "strong" not in picks
    assert explorer.explored > 20  # it did explore: among what fits
    ledger = Ledger(budget=cap)
    picks = [d.model for d in router.route_batch(queries, knob={"tradeoff": 0.0}, ledger=ledger)]
    assert "strong" not in picks and len(set(picks)) == 2
    assert explorer.explored <= explorer.decisions


def test_explorer_budget_and_arguments():
    explorer = Explorer(rate=0.2, evidence_half_life=1e-6, seed=0)
    router = make_router(explorer)
    router.route_batch([f"code question {i}" for i in range(300)], knob={"min_accuracy": 0.8})
    assert explorer.decisions == 300
    assert 0.1 * 300 <= explorer.explored <= 0.2 * 300
    assert explorer.evidence("mid", 40) < 1e-3  # never observed: stale
    explorer.observe("mid", 1.0, None, None)
    assert explorer.evidence("mid", 40) == pytest.approx(40)  # fresh after an outcome
    assert explorer.correction("mid", np.ones(8, np.float32) / np.sqrt(8)) == 0.0  # no drift tracking
    with pytest.raises(ScopeError):
        Router(CARDS, toy_history(), embedder=toy_embedder(), exploration=0.1)
    for bad in ({"rate": 1.5}, {"evidence_half_life": 0}, {"drift_half_life": -1}, {"temperature": 0}):
        with pytest.raises(ScopeError):
            Explorer(**bad)
