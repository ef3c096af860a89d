"""Curve figures and prediction-quality metrics on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from scope_shared.errors import ScopeError
from scope_shared.evaluation import (
    Point,
    apgr,
    auroc,
    brier,
    choice_point,
    cost_saving_at,
    cpt,
    curve,
    ece,
    frontier,
    hull,
    hull_area,
    lagrangian_choice,
    length_errors,
    model_points,
    oracle_choice,
    oracle_upper_bound,
    reference,
    step_area,
    summarize,
)

P = Point


def test_frontier_keeps_upper_left_and_breaks_ties():
    pts = [P(0.5, 1.0), P(0.6, 2.0), P(0.55, 3.0), P(0.6, 1.5), P(0.5, 1.0), P(0.4, 1.0)]
    assert frontier(pts) == [P(0.5, 1.0), P(0.6, 1.5)]
    # same cost: the more accurate; same accuracy: the cheaper
    assert frontier([P(0.3, 1.0), P(0.7, 1.0)]) == [P(0.7, 1.0)]
    assert frontier([P(0.7, 2.0), P(0.7, 1.0)]) == [P(0.7, 1.0)]


def test_hull_drops_points_under_a_mix():
    pts = [P(0.5, 1.0), P(0.55, 2.0), P(0.8, 3.0)]
    assert hull(pts) == [P(0.5, 1.0), P(0.8, 3.0)]  # the mix reaches 0.65 at cost 2
    assert hull([P(0.5, 1.0), P(0.75, 2.0), P(0.8, 3.0)]) == [P(0.5, 1.0), P(0.75, 2.0), P(0.8, 3.0)]


def test_step_and_hull_area_by_hand():
    pts = [P(0.5, 1.0), P(0.8, 3.0)]
    # cost range [1, 5]: points at normalised 0 and 0.5
    assert step_area(pts, 1.0, 5.0) == pytest.approx(0.5 * 0.5 + 0.8 * 0.5)
    assert hull_area(pts, 1.0, 5.0) == pytest.approx(0.5 * (0.5 + 0.8) / 2 + 0.5 * 0.8)
    # nothing reachable below the cheapest point
    assert step_area([P(0.7, 3.0)], 1.0, 5.0) == pytest.approx(0.35)
    assert hull_area([P(0.7, 3.0)], 1.0, 5.0) == pytest.approx(0.35)
    # a point beyond the most expensive model adds nothing
    assert step_area([P(0.9, 6.0)], 1.0, 5.0) == 0.0
    with pytest.raises(ScopeError):
        step_area(pts, 2.0, 2.0)


def test_cost_saving_at_bsm_accuracy():
    pts = [P(0.7, 1.0), P(0.8, 3.0), P(0.85, 4.5)]
    assert cost_saving_at(pts, 0.8, 4.0) == pytest.approx(0.25)
    assert cost_saving_at(pts, 0.9, 4.0) is None


def test_cost_share_within_one_point_of_bsm():
    scores, costs = _table()
    ref = reference(["a", "b", "c"], scores, costs)
    bsm = ref.model_points[ref.bsm_index]
    # a point 1 point below BSM's accuracy at half its cost counts, one 2 points below does not
    fig = summarize([P(bsm.accuracy - 0.01, bsm.cost / 2), P(bsm.accuracy - 0.02, bsm.cost / 10), bsm], ref)
    assert fig["cost_share_within_1pt"] == pytest.approx(0.5)
    assert summarize([P(bsm.accuracy - 0.02, bsm.cost / 10)], ref)["cost_share_within_1pt"] is None


def test_apgr_and_cpt_by_hand():
    weak, strong = P(0.5, 1.0), P(0.8, 3.0)
    pts = [P(0.5, 1.0), P(0.8, 2.0)]  # PGR 0 on [0, .5), 1 on [.5, 1]
    assert apgr(pts, weak, strong) == pytest.approx(0.5)
    assert cpt(pts, weak, strong, 0.5) == pytest.approx(0.5)
    assert cpt(pts, weak, strong, 0.8) == pytest.approx(0.5)
    assert cpt([P(0.6, 1.5)], weak, strong, 0.5) is None
    # the two models themselves: PGR 0 until the strong model's cost
    assert apgr([weak, strong], weak, strong) == pytest.approx(0.0)
    assert cpt([weak, strong], weak, strong, 0.5) == pytest.approx(1.0)


def _table():
    # 4 questions x 3 models (cheap, mid, strong)
    scores = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=float)
    costs = np.tile([1.0, 2.0, 10.0], (4, 1))
    return scores, costs


def test_a_router_that_always_picks_one_model_is_that_models_point():
    scores, costs = _table()
    pts = model_points(scores, costs)
    for j in range(3):
        c = curve(scores, costs, [np.full(4, j)] * 3)
        assert set(c) == {pts[j]}
        ref = reference(["a", "b", "c"], scores, costs)
        fig = summarize(c, ref)
        assert fig["max_accuracy"] == pts[j].accuracy
    assert choice_point(scores, costs, np.array([2, 2, 2, 2]), overhead=0.5) == P(0.75, 10.5)
    with pytest.raises(ScopeError):
        choice_point(scores, costs, np.array([0, 1]))


def test_reference_bsm_cheapest_and_oracle_with_ties():
    scores = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0]], dtype=float)
    costs = np.tile([3.0, 2.0, 1.0], (3, 1))
    ref = reference(["x", "y", "z"], scores, costs)
    assert ref.bsm_index == 1  # accuracies x 1/3, y 2/3, z 1/3
    assert ref.cheapest_index == 2
    # oracle: q0 -> y (cheapest correct), q1 -> z, q2 -> none correct: cheapest z
    assert list(oracle_choice(scores, costs)) == [1, 2, 2]
    assert ref.oracle == P(2 / 3, (2.0 + 1.0 + 1.0) / 3)
    tie = reference(["p", "q"], np.array([[1, 1], [0, 0]], float), np.tile([2.0, 1.0], (2, 1)))
    assert tie.bsm_index == 1  # same accuracy: the cheaper


def test_lagrangian_choice_ties_go_to_the_cheaper():
    s = np.array([[1.0, 1.0, 0.0]])
    c = np.array([[2.0, 1.0, 0.5]])
    assert lagrangian_choice(s, c, 0.0)[0] == 1
    assert lagrangian_choice(s, c, np.inf)[0] == 2
    assert lagrangian_choice(s, c, 10.0)[0] == 2


def test_oracle_bounds_any_routing_at_every_cost():
    rng = np.random.default_rng(0)
    scores = (rng.random((200, 5)) < rng.random(5)).astype(float)
    costs = rng.random((200, 5)) * np.array([1, 2, 4, 8, 16])
    lambdas = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 60)])
    for _ in range(300):
        ch = rng.integers(0, 5, 200)
        p = choice_point(scores, costs, ch)
        assert p.accuracy <= oracle_upper_bound(scores, costs, p.cost, lambdas) + 1e-9


def test_auroc_brier_ece_by_hand():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)  # a tie counts 1/2
    assert auroc(np.array([0.2, 0.9]), np.array([1, 1])) is None
    assert auroc(np.array([0.2, np.nan, 0.9]), np.array([0, 1, 1])) == pytest.approx(1.0)
    assert brier(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    assert ece(np.array([0.25, 0.25, 0.75, 0.75]), np.array([0, 1, 1, 1])) == pytest.approx(0.25)
    assert ece(np.array([1.0, 0.0]), np.array([1, 0])) == pytest.approx(0.0)
    with pytest.raises(ScopeError):
        brier(np.array([0.1, 0.2]), np.array([1.0]))


def test_length_errors_by_hand():
    le = length_errors(np.array([100.0, 300.0, 1000.0]), np.array([150.0, 200.0, 500.0]))
    assert le["median_abs_rel_error"] == pytest.approx(0.5)
    assert le["within_band"] == pytest.approx(2 / 3)  # bands 100, 100, 125
    assert length_errors(np.array([np.nan]), np.array([1.0]))["n"] == 0
