"""The panel estimator borrows strength across models, keeps levels right and shrinks far from home.

The synthetic world is item-response shaped: questions sit in topic clusters; each question has a
difficulty and a skill mix that vary smoothly with its embedding; a model answers correctly with
probability sigmoid(ability . skills - difficulty). Reference models have every outcome; a new
model has a few dozen, so its own neighbours are far and few, while the panel's are near.
"""

from __future__ import annotations

import numpy as np
import pytest

from scope_shared import History
from scope_shared.errors import EstimatorError
from scope_shared.estimators import KNNEstimator, PanelEstimator
from scope_shared.estimators.logistic import sigmoid
from scope_shared.estimators.shrinkage import Shrinkage, fit_shrinkage
from scope_shared.metrics import auroc

DIM, SPAN, TOPICS, PER_TOPIC = 16, 12, 8, 90  # questions live in the first SPAN dimensions
ABILITIES = {  # two skills; the panel spans them
    "ref-a": (2.0, 0.0), "ref-b": (0.0, 2.0), "ref-c": (1.5, 1.5), "ref-d": (0.5, 0.5),
    "ref-e": (2.5, 1.0), "ref-f": (1.0, 2.5),
}
NEW = (2.2, 0.6)


class World:
    """Questions (vectors, difficulty, skills) and models' outcome probabilities (see module doc)."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        centres = np.zeros((TOPICS, DIM))
        centres[:, :SPAN] = rng.standard_normal((TOPICS, SPAN))
        self.topic_skill = rng.uniform(0, 1, (TOPICS, 2))
        self.topic_diff = rng.uniform(0, 2.5, TOPICS)
        self.dir_diff = rng.standard_normal(DIM)  # difficulty varies along one direction in a topic
        self.rng = rng
        self.centres = centres

    def questions(self, n_per_topic: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        vecs, diff, skill, topic = [], [], [], []
        for t in range(TOPICS):
            offs = np.zeros((n_per_topic, DIM))
            offs[:, :SPAN] = 0.35 * self.rng.standard_normal((n_per_topic, SPAN))
            v = self.centres[t] + offs
            vecs.append(v)
            diff.append(self.topic_diff[t] + 1.5 * np.tanh(offs @ self.dir_diff))
            skill.append(np.repeat(self.topic_skill[t][None, :], n_per_topic, 0))
            topic += [f"topic-{t}"] * n_per_topic
        v = np.concatenate(vecs)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v.astype(np.float32), np.concatenate(diff), np.concatenate(skill), topic

    @staticmethod
    def p(ability: tuple[float, float], diff: np.ndarray, skill: np.ndarray) -> np.ndarray:
        return sigmoid(skill @ np.asarray(ability) - diff)


def build(seed: int = 0, new_outcomes: int = 40) -> tuple[History, World, np.ndarray]:
    world = World(seed)
    vecs, diff, skill, topic = world.questions(PER_TOPIC)
    h = History(DIM, "synthetic")
    ids = np.array(h.add_questions([f"q{i}" for i in range(len(vecs))], vecs, topic))
    for m, ab in ABILITIES.items():
        y = (world.rng.uniform(size=len(ids)) < world.p(ab, diff, skill)).astype(float)
        h.add_outcome_arrays(ids, m, y)
    picked = np.sort(world.rng.choice(ids, size=new_outcomes, replace=False))
    y_new = (world.rng.uniform(size=len(picked)) < world.p(NEW, diff[picked], skill[picked])).astype(float)
    h.add_outcome_arrays(picked, "new", y_new)
    return h, world, np.array([np.mean(world.p(NEW, diff, skill))])


def fresh(world: World, n_per_topic: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """New questions from the same topics, and the new model's true probabilities on them."""
    vecs, diff, skill, _ = world.questions(n_per_topic)
    return vecs, world.p(NEW, diff, skill)


def predict(est, h: History, vecs: np.ndarray, models: list[str]) -> np.ndarray:
    return est.predict_for([""] * len(vecs), vecs, models, h).p_correct


def test_a_model_with_few_outcomes_is_sharper_with_the_panel_than_with_its_own_anchors():
    panel_auc, knn_auc, corr = [], [], []
    for seed in range(3):
        h, world, _ = build(seed, new_outcomes=40)
        vecs, p_true = fresh(world)
        y = (np.random.default_rng(5).uniform(size=len(p_true)) < p_true).astype(float)
        panel = predict(PanelEstimator(), h, vecs, ["new"])[:, 0]
        knn = predict(KNNEstimator(), h, vecs, ["new"])[:, 0]
        panel_auc.append(auroc(panel, y))
        knn_auc.append(auroc(knn, y))
        corr.append(np.corrcoef(panel, p_true)[0, 1])
    assert np.mean(panel_auc) > np.mean(knn_auc) + 0.03
    assert min(corr) > 0.55


def test_the_new_models_level_is_its_accuracy():
    errors = []
    for seed in range(3):
        h, world, _ = build(seed, new_outcomes=60)
        vecs, p_true = fresh(world)
        errors.append(predict(PanelEstimator(), h, vecs, ["new"])[:, 0].mean() - p_true.mean())
    assert np.mean(np.abs(errors)) < 0.06


def test_reference_models_keep_their_levels_and_discrimination():
    h, world, _ = build()
    vecs, diff, skill, _ = world.questions(40)
    est = PanelEstimator()
    p = predict(est, h, vecs, list(ABILITIES))
    knn = predict(KNNEstimator(), h, vecs, list(ABILITIES))
    for j, (m, ab) in enumerate(ABILITIES.items()):
        truth = world.p(ab, diff, skill)
        assert abs(p[:, j].mean() - truth.mean()) < 0.05, m
        # with all its outcomes, a model is estimated at least about as well as by its own kNN
        assert np.corrcoef(p[:, j], truth)[0, 1] > np.corrcoef(knn[:, j], truth)[0, 1] - 0.03, m


def test_far_from_every_question_the_estimate_is_the_models_level():
    h, _, _ = build()
    est = PanelEstimator()
    rng = np.random.default_rng(3)
    far = np.zeros((20, DIM), np.float32)
    far[:, SPAN:] = rng.standard_normal((20, DIM - SPAN))  # orthogonal to every question
    far /= np.linalg.norm(far, axis=1, keepdims=True)
    near = h.vectors(np.arange(20))
    shrink = est.panel(h).shrinkage
    from scope_shared.estimators.panel_features import closeness

    assert shrink.weight(closeness(h, far)).mean() < shrink.weight(closeness(h, near)).mean()
    p_far = predict(est, h, far, list(ABILITIES))
    levels = np.array([sigmoid(np.array(est.model_fit(m, h).level)) for m in ABILITIES])
    # far away the estimates barely vary by query, and sit at each model's level
    assert np.abs(p_far - levels[None, :]).max() < 0.12


def test_fit_shrinkage_keeps_good_estimates_and_drops_noise_far_away():
    rng = np.random.default_rng(0)
    n = 4000
    close = rng.uniform(0, 1, n)
    truth = rng.normal(0, 2, n)
    y = (rng.uniform(size=n) < sigmoid(truth)).astype(float)
    informative = fit_shrinkage(truth, np.zeros(n), close, y)
    assert informative.weight(np.array([0.1, 0.9])).min() > 0.9
    # near (closeness > 0.5) the estimate knows the truth; far it is noise
    eta = np.where(close > 0.5, truth, rng.normal(0, 2, n))
    s = fit_shrinkage(eta, np.zeros(n), close, y)
    assert s.weight(np.array([0.9]))[0] > 0.8 > 0.3 > s.weight(np.array([0.1]))[0]
    assert Shrinkage().weight(np.array([0.0, 1.0])).min() > 0.999


def test_a_model_added_later_is_served_without_retraining():
    h, world, _ = build()
    est = PanelEstimator()
    vecs, _ = fresh(world, 5)
    predict(est, h, vecs, list(ABILITIES))
    ids = np.arange(0, len(h), 12)
    h.add_outcome_arrays(ids, "later", np.ones(len(ids)))
    p = predict(est, h, vecs, ["later"])
    assert p.min() > 0.8  # it answered every anchor right
    h.add_outcome_arrays(np.arange(1, len(h), 12), "later", np.zeros(len(ids)))  # half right now
    assert 0.3 < predict(est, h, vecs, ["later"]).mean() < 0.7  # the cached fit was redone


def test_without_a_panel_it_is_the_knn_estimator(history):
    one = history.select_models(["strong"])
    q = history.vectors(np.arange(5))
    np.testing.assert_allclose(predict(PanelEstimator(), one, q, ["strong"]), predict(KNNEstimator(), one, q, ["strong"]))


def test_the_estimate_mixes_the_panel_with_the_level_corrected_knn_estimate():
    """Step 4: with ``knn_weight`` w the estimate is (1 - w) x the pure panel's + w x `KNNEstimator`'s
    (on the model's level: the new model's 40 outcomes are corrected for which questions they are),
    for new queries and for the history questions the default knob is calibrated on alike."""
    h, world, _ = build(0, new_outcomes=40)
    vecs, _ = fresh(world, 10)
    models = ["new", *ABILITIES]
    pure = predict(PanelEstimator(knn_weight=0.0), h, vecs, models)
    knn = predict(KNNEstimator(), h, vecs, models)
    mixed = predict(PanelEstimator(knn_weight=0.4), h, vecs, models)
    np.testing.assert_allclose(mixed, 0.6 * pure + 0.4 * knn, atol=1e-9)
    assert np.abs(mixed - pure).max() > 0.01  # the kNN part is not the panel's
    pure_h = PanelEstimator(knn_weight=0.0).history_estimates(h, models)
    mixed_h = PanelEstimator(knn_weight=0.4).history_estimates(h, models)
    assert np.array_equal(pure_h.ids, mixed_h.ids) and np.abs(mixed_h.p_correct - pure_h.p_correct).max() > 0.01
    only_knn = PanelEstimator(knn_weight=1.0).history_estimates(h, models).p_correct
    np.testing.assert_allclose(mixed_h.p_correct, 0.6 * pure_h.p_correct + 0.4 * only_knn, atol=1e-9)


def test_prepare_leaves_no_search_for_the_first_estimate(monkeypatch):
    """After `prepare`, estimating (anchors already fetched) searches the history no more: the kNN
    part's level offsets were found with the fits, not on the first routed call."""
    h, world, _ = build(0, new_outcomes=40)
    vecs, _ = fresh(world, 5)
    models = ["new", *ABILITIES]
    est = PanelEstimator()
    est.prepare(h, models)
    anchors = h.anchors(vecs, models, est.k)

    def no_search(*args, **kwargs):
        raise AssertionError("a history search while estimating")

    monkeypatch.setattr(h, "anchors", no_search)
    assert est.predict([""] * len(vecs), vecs, anchors, h).p_correct.shape == (len(vecs), len(models))


@pytest.mark.parametrize("kwargs", [{"factors": 0}, {"min_share": 0}, {"fit_sample": 10}, {"refit_share": -1},
                                    {"knn_weight": 1.5}, {"knn_weight": -0.1}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(EstimatorError, match="PanelEstimator needs"):
        PanelEstimator(**kwargs)


def test_benchmark_skills_read_a_specialists_field():
    """With per-benchmark skills, a model right only on two topics is told apart there from its
    anchors, beyond what the factors say."""
    h, _, _ = build(0, new_outcomes=40)
    topics = np.array(h.benchmarks)
    good = {"topic-0", "topic-1"}
    ids = np.sort(np.random.default_rng(1).choice(len(h), size=80, replace=False))
    h.add_outcome_arrays(ids, "specialist", np.array([1.0 if topics[i] in good else 0.0 for i in ids]))
    est = PanelEstimator(benchmark_skills=True)
    state = est.state(h)
    assert state.panel.benchmarks == tuple(sorted(set(topics))) and len(state.panel.skill_var) == TOPICS
    p = predict(est, h, h.vectors(np.arange(len(h))), ["specialist"])[:, 0]
    inside = np.isin(topics, list(good))
    assert p[inside].mean() > p[~inside].mean() + 0.4


def test_refit_tables_are_one_state_while_live_feedback_grows_the_history():
    """Outcomes recorded from other threads grow the history while a refit reads it (a CI run once
    hit an outcome id past the rows of a matrix sized a moment earlier): the tables a refit reads,
    the score matrix and the level item bank, each see one state."""
    import threading

    from scope_shared.estimators.levels import history_item_bank
    from scope_shared.estimators.panel_features import score_matrix

    h, _, _ = build()
    model, reference = h.models[0], h.models[:3]
    stop = threading.Event()

    def feedback() -> None:
        rng, i = np.random.default_rng(1), 0
        while not stop.is_set():
            v = rng.normal(size=DIM).astype(np.float32)
            h.add(f"live question {i}", v / np.linalg.norm(v), [{"model": model, "correct": 1.0}])
            i += 1

    writer = threading.Thread(target=feedback)
    writer.start()
    try:
        for _ in range(30):
            scores = score_matrix(h, [model])[0]
            ids = h.model_arrays(model).ids
            assert scores.shape[0] >= 1 and np.isfinite(scores[:, 0]).sum() <= len(ids)
            history_item_bank(h, reference)
    finally:
        stop.set()
        writer.join()
    assert len(h) > 0 and h.score_matrix([model]).shape == (len(h), 1)
