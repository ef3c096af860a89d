"""The default estimator's fits: made once when a router is built, kept in the history and shared,
refreshed after new outcomes, and never made on a routed call."""

from __future__ import annotations

import numpy as np
from conftest import CARDS, toy_embedder, toy_history

from scope_shared import ModelCard, PanelEstimator, Router
from scope_shared.estimators.panel import PanelState


def panel_state(router: Router) -> PanelState:
    states = [v for v in router.history.fit_cache.values() if isinstance(v, PanelState)]
    assert len(states) == 1
    return states[0]


def test_the_default_estimator_is_the_panel_and_it_is_fitted_when_the_router_is_built():
    history = toy_history()
    assert not history.fit_cache
    router = Router(CARDS, history, embedder=toy_embedder())
    assert isinstance(router.estimator, PanelEstimator)
    state = panel_state(router)
    assert set(state.fits) == {c.name for c in CARDS}  # every candidate fitted before any call
    fitted = state.fitted
    d = router.route("a math question never seen")  # the first routed call
    router.route_batch([f"code question {i}" for i in range(5)])
    assert panel_state(router) is state and state.fitted == fitted  # nothing refitted on routed calls
    assert d.estimates["strong"].estimator == "panel"


def test_a_second_router_over_the_same_history_reuses_the_fits():
    history = toy_history()
    first = Router(CARDS, history, embedder=toy_embedder())
    state = panel_state(first)
    fitted = state.fitted
    second = Router(CARDS[:2], history, embedder=toy_embedder())
    assert panel_state(second) is state and state.fitted == fitted
    math_q = "math question asked today"
    assert first.estimate(math_q)["cheap"].p_correct == second.estimate(math_q)["cheap"].p_correct


def test_a_model_added_to_the_router_is_fitted_then_and_not_on_its_first_call():
    history = toy_history()
    router = Router(CARDS, history, embedder=toy_embedder())
    state = panel_state(router)
    outcomes = {f"math question number {i}": 1.0 for i in range(20)}
    outcomes.update({f"trivia question number {i}": 0.0 for i in range(20)})
    router.add_model(ModelCard(name="new", input_price=0.05, output_price=0.1), outcomes)
    state = panel_state(router)  # 40 of 60 questions: a reference model now, so the panel was refitted
    assert "new" in state.fits
    fitted = state.fitted
    est = router.estimate("math question from a user")
    assert state.fitted == fitted  # the first call did not fit
    assert est["new"].p_correct > router.estimate("trivia question from a user")["new"].p_correct + 0.3


def test_fits_are_refreshed_after_new_outcomes():
    history = toy_history()
    router = Router(CARDS, history, embedder=toy_embedder())
    state = panel_state(router)
    before = state.fits["cheap"]
    p_before = router.estimate("math question for cheap")["cheap"].p_correct
    # cheap got better at maths: live feedback on new maths questions, all right
    for i in range(30):
        router.record_outcome(f"math question from the field {i}", "cheap", 1.0)
    after = panel_state(router).fits["cheap"]
    assert after is not before and after.n_outcomes > before.n_outcomes + 20  # refitted as outcomes came in
    fitted = panel_state(router).fitted
    p_after = router.estimate("math question for cheap")["cheap"].p_correct
    assert panel_state(router).fitted == fitted  # and not on the call that followed
    assert p_after > p_before + 0.1


def test_a_few_new_outcomes_keep_the_cached_fit():
    history = toy_history()
    router = Router(CARDS, history, embedder=toy_embedder())
    state = panel_state(router)
    fit = state.fits["mid"]
    router.record_outcome("code question from the field", "mid", 1.0)  # 1 of 60: under refit_share
    assert panel_state(router).fits["mid"] is fit


def test_estimators_with_other_settings_keep_their_own_fits():
    history = toy_history()
    Router(CARDS, history, embedder=toy_embedder())
    Router(CARDS, history, embedder=toy_embedder(), estimator=PanelEstimator(factors=2))
    states = [v for v in history.fit_cache.values() if isinstance(v, PanelState)]
    assert len(states) == 2
    assert sorted(s.panel.basis.shape[1] for s in states) == [2, 3]  # each its own number of factors
    assert np.all([len(s.fits) == 3 for s in states])
