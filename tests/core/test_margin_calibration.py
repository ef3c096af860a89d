"""The default knob's margin is calibrated on the router's own history (`routing.margin_calibration`)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CARDS, toy_embedder, toy_history

from scope_shared import History, KNNEstimator, ModelCard, Router
from scope_shared.estimators import PanelEstimator
from scope_shared.estimators.logistic import sigmoid
from scope_shared.metrics import auroc
from scope_shared.routing.knobs import DEFAULT_ACCURACY_MARGIN, make_knob
from scope_shared.routing.margin_calibration import MARGIN_GRID, MIN_QUESTIONS, largest_safe_margin, local_closeness
from scope_shared.routing.policies import margin_choices, rank


def overstated_cheap_world(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An expensive model always right; a cheap one right on half the questions, where it is
    predicted 0.95, and wrong on the rest, where it is overstated at 0.92 (the expensive: 0.99)."""
    right = np.arange(n) % 2 == 0
    p = np.column_stack([np.full(n, 0.99), np.where(right, 0.95, 0.92)])
    correct = np.column_stack([np.ones(n), right.astype(float)])
    cost = np.tile([1.0, 0.01], (n, 1))
    return p, correct, cost


def test_the_largest_margin_that_keeps_accuracy_is_chosen():
    p, correct, cost = overstated_cheap_world()
    margin, gap = largest_safe_margin(p, correct, cost, tolerance=0.0)
    # 0.04 admits the cheap model only where it is right; 0.07 admits it where it is wrong too
    assert margin == pytest.approx(0.06) and gap == 0.0
    # allowed to give up a whole half of the questions' accuracy, every margin qualifies
    assert largest_safe_margin(p, correct, cost, tolerance=0.5)[0] == MARGIN_GRID[-1]


def test_a_margin_past_one_that_failed_is_not_chosen():
    p, correct, cost = overstated_cheap_world()
    # a third model, admitted from 0.10 on, is right everywhere: larger margins recover accuracy,
    # but the rule stops at the first margin that gives up too much
    p3 = np.column_stack([p, np.full(len(p), 0.885)])
    correct3 = np.column_stack([correct, np.ones(len(p))])
    cost3 = np.column_stack([cost, np.full(len(p), 0.001)])
    assert largest_safe_margin(p3, correct3, cost3, tolerance=0.0)[0] == pytest.approx(0.06)


def test_a_router_calibrates_its_default_on_questions_every_candidate_answered():
    h = toy_history(per_topic=120)  # cheap knows trivia, mid code and trivia, strong everything
    r = Router(CARDS, h, embedder=toy_embedder())
    assert r.default_knob.kind == "accuracy_margin" and r.default_knob.value > DEFAULT_ACCURACY_MARGIN
    assert "calibrated on" in r.default_knob_reason and "+0.0 points" in r.default_knob_reason
    # the calibrated default still sends each question to the cheapest model that gets it right
    assert [r.route(q).model for q in ("trivia about rivers", "write code for a parser", "a math problem")] == [
        "cheap", "mid", "strong"]
    assert r.route("trivia about rivers").knob == r.default_knob.as_dict()
    # a query unlike every history question (no topic of the toy world) gets the fixed margin
    far = "an unrelated request"
    assert [k.value for k in r.default_knobs(r.embed(["trivia about rivers", far]))] == [
        r.default_knob.value, DEFAULT_ACCURACY_MARGIN]
    assert r.route(far).knob == {"accuracy_margin": DEFAULT_ACCURACY_MARGIN}
    assert r.route(far, knob={"accuracy_margin": 0.2}).knob == {"accuracy_margin": 0.2}  # a set knob is kept


def test_a_uniformly_weaker_cheap_model_gets_little_margin():
    rng = np.random.default_rng(3)
    emb = toy_embedder()
    texts = [f"trivia question number {i}" for i in range(600)]
    h = History(emb.dim, emb.name)
    ids = np.array(h.add_questions(texts, emb.embed(texts)))
    truth = {"strong": 0.9, "cheap": 0.75}
    for m, p in truth.items():
        h.add_outcome_arrays(ids, m, (rng.uniform(size=len(ids)) < p).astype(float))
    cards = [ModelCard(name="strong", input_price=10.0, output_price=30.0),
             ModelCard(name="cheap", input_price=0.1, output_price=0.2)]
    r = Router(cards, h, embedder=emb)
    assert r.default_knob.value < truth["strong"] - truth["cheap"]  # admitting cheap everywhere loses 15 points
    shares = np.mean([r.route(f"trivia quiz {i}").model == "strong" for i in range(50)])
    assert shares > 0.8


def test_the_fixed_margin_where_there_is_nothing_to_calibrate_on():
    few = Router(CARDS, toy_history(), embedder=toy_embedder())  # 60 questions
    assert few.default_knob.value == DEFAULT_ACCURACY_MARGIN
    assert f"(< {MIN_QUESTIONS})" in few.default_knob_reason
    knn = Router(CARDS, toy_history(per_topic=120), embedder=toy_embedder(), estimator=KNNEstimator())
    assert knn.default_knob.value == DEFAULT_ACCURACY_MARGIN and "cannot" in knn.default_knob_reason
    given = Router(CARDS, toy_history(per_topic=120), embedder=toy_embedder(), default_knob={"min_accuracy": 0.5})
    assert given.default_knob.as_dict() == {"min_accuracy": 0.5} and given.default_knob_reason == "set by default_knob="


def test_a_model_known_from_a_few_anchors_falls_back_to_the_fixed_margin():
    h = toy_history(per_topic=120)
    r = Router(CARDS, h, embedder=toy_embedder())
    assert r.default_knob.value > 0
    r.add_model(ModelCard(name="new", input_price=0.5, output_price=1.0),
                {f"math question number {i}": 1.0 for i in range(30)})
    assert r.default_knob.value == DEFAULT_ACCURACY_MARGIN and "only" in r.default_knob_reason


def test_models_known_from_their_anchors_are_calibrated_on_known_models_standing_in_for_them():
    # the history knows cheap (trivia only), mid and strong (everything) well; the candidates are two
    # new models known from 30 anchors each, one like strong and one like cheap
    h = toy_history(per_topic=120)
    emb = toy_embedder()
    anchors = [i for i in range(len(h)) if int(h.text(i).split()[-1]) < 10]  # 10 of each topic
    for name, right_on in (("big", {"math", "code", "trivia"}), ("small", {"trivia"})):
        h.add_outcome_arrays(anchors, name, [float(h.text(i).split()[0] in right_on) for i in anchors])
    cards = [ModelCard(name="big", input_price=10.0, output_price=30.0),
             ModelCard(name="small", input_price=0.1, output_price=0.2)]
    r = Router(cards, h, embedder=emb)
    assert "big played by strong" in r.default_knob_reason and "small played by cheap" in r.default_knob_reason
    assert r.default_knob.value > DEFAULT_ACCURACY_MARGIN and "points against margin 0" in r.default_knob_reason
    assert [r.route(q).model for q in ("trivia about rivers", "a math problem")] == ["small", "big"]
    # with no known model left to stand in (every history model a candidate), the fixed margin
    alone = Router([*CARDS, *cards], h, embedder=emb)
    assert alone.default_knob.value == DEFAULT_ACCURACY_MARGIN and "no known model to stand in" in alone.default_knob_reason


def test_onboarded_estimates_hide_the_models_own_history_from_it():
    # d's chance follows a direction of the vectors no other model's does: known from all its
    # outcomes it is sharp; as if known from 40 of them (its column hidden from the panel), it is not
    rng = np.random.default_rng(0)
    dim, slopes = 8, {"a": 4.0, "b": -3.0, "c": 2.0, "d": 5.0}
    v = rng.standard_normal((1500, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    y = np.column_stack([rng.uniform(size=len(v)) < sigmoid(w * v[:, j]) for j, w in enumerate(slopes.values())])
    h = History(dim, "random")
    ids = np.array(h.add_questions([f"q{i}" for i in range(len(v))], v))
    for j, m in enumerate(slopes):
        h.add_outcome_arrays(ids, m, y[:, j].astype(float))
    est = PanelEstimator()
    dense = est.history_estimates(h, ["d"])
    anchors = ids[rng.choice(len(ids), 40, replace=False)]
    onboarded = est.onboarded_estimates(h, "d", anchors)
    assert np.array_equal(onboarded.ids, dense.ids)
    truth = y[dense.ids, 3]
    assert auroc(onboarded.p_correct[:, 0], truth) < auroc(dense.p_correct[:, 0], truth) - 0.1
    assert abs(onboarded.p_correct.mean() - truth.mean()) < 0.1  # its level, from 40 outcomes
    assert est.onboarded_estimates(h, "not-a-model", anchors) is None


def test_history_estimates_score_like_new_questions_not_like_seen_ones():
    # each model's chance follows one direction of the vectors; estimates on history questions that
    # hide each question from itself discriminate as well as on new questions, and no better: those
    # that see the question's own outcome look better than they are
    rng = np.random.default_rng(0)
    dim, slopes = 8, {"a": 4.0, "b": -3.0, "c": 2.0}

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        v = rng.standard_normal((n, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        y = np.column_stack([rng.uniform(size=n) < sigmoid(w * v[:, j]) for j, w in enumerate(slopes.values())])
        return v, y.astype(float)

    vecs, y = draw(1200)
    h = History(dim, "random")
    ids = np.array(h.add_questions([f"q{i}" for i in range(len(vecs))], vecs))
    for j, m in enumerate(slopes):
        h.add_outcome_arrays(ids, m, y[:, j])
    est, models = PanelEstimator(), list(slopes)
    got = est.history_estimates(h, models)
    pool, hidden = got.ids, got.p_correct
    seen = est.predict_for([""] * len(pool), vecs[pool], models, h).p_correct
    new_vecs, new_y = draw(2000)
    new = est.predict_for([""] * len(new_vecs), new_vecs, models, h).p_correct

    def mean_auroc(p: np.ndarray, outcomes: np.ndarray) -> float:
        return float(np.mean([auroc(p[:, j], outcomes[:, j]) for j in range(len(models))]))

    assert abs(mean_auroc(hidden, y[pool]) - mean_auroc(new, new_y)) < 0.03
    assert mean_auroc(seen, y[pool]) > mean_auroc(hidden, y[pool]) + 0.04
    assert np.allclose(hidden.mean(0), y[pool].mean(0), atol=0.01)  # and the levels are right


def test_the_vectorised_margin_rule_is_the_policys_first_choice():
    rng = np.random.default_rng(1)
    p = np.round(rng.uniform(size=(300, 4)), 2)  # rounded: ties on p and on the margin's edge occur
    cost = np.round(rng.uniform(size=(300, 4)), 1)
    for m in (0.0, 0.05, 0.3):
        expected = [rank(make_knob("accuracy_margin", m), p[i], cost[i])[0] for i in range(len(p))]
        assert margin_choices(m, p, cost).tolist() == expected


def test_local_closeness_tells_a_new_kind_of_question_from_a_sparse_corner_of_the_history():
    rng = np.random.default_rng(0)
    dim = 32

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    def cluster(centre: np.ndarray, spread: float, n: int) -> np.ndarray:
        return unit(centre + spread * rng.standard_normal((n, dim))).astype(np.float32)

    dense, sparse = unit(rng.standard_normal(dim)), unit(rng.standard_normal(dim))
    beside_dense = unit(dense + 0.6 * unit(rng.standard_normal(dim)))  # a kind the history lacks
    h = History(dim, "clusters")
    h.add_questions([f"q{i}" for i in range(600)], np.vstack([cluster(dense, 0.02, 300), cluster(sparse, 0.15, 300)]))
    like_sparse, new_kind = cluster(sparse, 0.15, 50), cluster(beside_dense, 0.02, 50)
    nearest = lambda q: float(np.sort(q @ h.embeddings.T, axis=1)[:, -5:].mean())  # noqa: E731
    assert nearest(new_kind) > nearest(like_sparse)  # raw closeness would call the sparse corner farther
    assert local_closeness(h, new_kind).mean() < local_closeness(h, like_sparse).mean() - 0.05
    assert abs(local_closeness(h, like_sparse).mean()) < 0.05
