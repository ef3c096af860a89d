"""The level estimator: a new model's accuracy from a few outcomes, corrected for which questions they are."""

from __future__ import annotations

import numpy as np
import pytest

from scope_shared.errors import EstimatorError
from scope_shared.estimators.levels import estimate_level, fit_item_bank


def rasch_world(seed: int = 0, n_questions: int = 3000, n_known: int = 8):
    """Three benchmarks of different hardness, questions of spread difficulty, known models of
    spread ability, all answering by the Rasch rule; returns (known outcomes, benchmarks, truth fn)."""
    rng = np.random.default_rng(seed)
    bench_names = np.array(["easy", "mid", "hard"])
    bench = rng.integers(0, 3, n_questions)
    difficulty = rng.normal(0.0, 1.6, n_questions) + np.array([-1.0, 0.0, 1.2])[bench]
    abilities = np.linspace(-1.5, 1.8, n_known)
    p = 1 / (1 + np.exp(-(abilities[None, :] - difficulty[:, None])))
    known = (rng.random(p.shape) < p).astype(float)

    def new_model(theta: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(theta - difficulty)))

    return known, bench_names[bench].tolist(), new_model


@pytest.mark.parametrize("theta", [-1.0, 0.3, 1.5])
def test_level_correction_recovers_a_known_level_from_an_easy_anchor_draw(theta):
    known, benchmarks, new_model = rasch_world()
    bank = fit_item_bank(known, benchmarks)
    p_new = new_model(theta)
    truth = float(p_new.mean())  # the new model's accuracy on the whole pool
    rng = np.random.default_rng(1)
    # anchors drawn deliberately easy: among the questions most known models solve
    easy = np.flatnonzero(known.mean(1) >= 0.75)
    ids = rng.choice(easy, 60, replace=False)
    y = (rng.random(len(ids)) < p_new[ids]).astype(float)
    est = estimate_level(bank, ids, y)
    assert est.naive - truth > 0.15  # the plain mean is far too high
    assert est.low <= truth <= est.high
    assert abs(est.level - truth) < 0.5 * (est.naive - truth)  # most of the tilt is removed
    assert est.high - est.low < 0.35


def test_level_is_unbiased_over_draws_and_its_interval_covers():
    known, benchmarks, new_model = rasch_world(seed=3)
    bank = fit_item_bank(known, benchmarks)
    p_new = new_model(0.4)
    truth = float(p_new.mean())
    errors, covered = [], []
    for s in range(60):
        rng = np.random.default_rng([s, 5])
        # a hard draw: questions weighted toward those the known models fail
        w = 1.2 - known.mean(1)
        ids = rng.choice(len(w), 40, replace=False, p=w / w.sum())
        y = (rng.random(len(ids)) < p_new[ids]).astype(float)
        est = estimate_level(bank, ids, y)
        errors.append(est.level - truth)
        covered.append(est.low <= truth <= est.high)
    assert abs(np.mean(errors)) < 0.02
    assert np.mean(covered) >= 0.85


def test_per_benchmark_levels_follow_a_specialist():
    known, benchmarks, new_model = rasch_world(seed=4)
    bank = fit_item_bank(known, benchmarks)
    b = np.array(benchmarks)
    p_new = new_model(0.0)
    p_new = np.where(b == "hard", np.minimum(p_new + 0.4, 1.0), p_new)  # strong on the hard benchmark only
    rng = np.random.default_rng(2)
    ids = rng.choice(len(b), 150, replace=False)
    y = (rng.random(len(ids)) < p_new[ids]).astype(float)
    est = estimate_level(bank, ids, y)
    hard = est.benchmark("hard")
    assert hard is not None and hard.low <= float(p_new[b == "hard"].mean()) <= hard.high
    assert hard.level > est.benchmark("mid").level
    shares = {r.name: float((b == r.name).mean()) for r in est.per_benchmark}
    assert est.level == pytest.approx(sum(shares[r.name] * r.level for r in est.per_benchmark), abs=1e-9)


def test_no_outcomes_gives_the_prior_and_bad_input_is_refused():
    known, benchmarks, _ = rasch_world(seed=5, n_questions=300)
    bank = fit_item_bank(known, benchmarks)
    est = estimate_level(bank, [], [])
    assert est.method == "prior" and est.n == 0 and est.low < est.level < est.high
    with pytest.raises(EstimatorError, match="one outcome per question"):
        estimate_level(bank, [1, 2], [1.0])
    with pytest.raises(EstimatorError, match="outside the item bank"):
        estimate_level(bank, [10_000], [1.0])
    with pytest.raises(EstimatorError, match=r"scores in \[0, 1\]"):
        estimate_level(bank, [1], [2.0])
    with pytest.raises(EstimatorError, match="one benchmark per question"):
        fit_item_bank(known, benchmarks[:-1])


# ---------------------------------------------------------------- wired into the estimators
def easy_anchor_history(seed: int = 0, n_anchors: int = 50):
    """A History of clustered questions with the Rasch world's outcomes: eight reference models
    with every outcome, and a new model with ``n_anchors`` outcomes drawn among easy questions.
    Returns (history, the new model's true accuracy on the history's questions)."""
    from scope_shared import History

    known, benchmarks, new_model = rasch_world(seed, n_questions=1200)
    rng = np.random.default_rng([seed, 9])
    centres = {b: rng.standard_normal(16) for b in set(benchmarks)}
    vecs = np.stack([centres[b] + 0.6 * rng.standard_normal(16) for b in benchmarks])
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    h = History(16, "synthetic")
    ids = np.array(h.add_questions([f"q{i}" for i in range(len(vecs))], vecs, benchmarks))
    for j in range(known.shape[1]):
        h.add_outcome_arrays(ids, f"ref-{j}", known[:, j])
    p_new = new_model(-0.3)
    easy = np.flatnonzero(known.mean(1) >= 0.6)
    picked = np.sort(rng.choice(easy, n_anchors, replace=False))
    h.add_outcome_arrays(ids[picked], "new", (rng.random(len(picked)) < p_new[picked]).astype(float))
    return h, float(p_new.mean())


def test_model_levels_corrects_a_few_outcome_model_and_keeps_reference_means():
    from scope_shared.estimators.levels import model_levels

    h, truth = easy_anchor_history()
    levels = model_levels(h)
    new = levels["new"]
    assert new.method == "irt" and new.n == 50
    assert new.naive - truth > 0.15 and new.low <= truth <= new.high
    ref = levels["ref-0"]
    assert ref.method == "mean" and ref.level == pytest.approx(h.model_stats("ref-0")["accuracy"])
    assert model_levels(h)["new"] is new  # cached while the outcomes stay


def test_knn_and_panel_estimates_sit_at_the_corrected_level():
    from scope_shared.estimators import KNNEstimator, PanelEstimator
    from scope_shared.estimators.levels import model_levels

    h, truth = easy_anchor_history(seed=1)
    level = model_levels(h)["new"].level
    vecs = h.vectors(np.arange(0, len(h), 3))

    def mean_estimate(est) -> float:
        return float(est.predict_for([""] * len(vecs), vecs, ["new"], h).p_correct.mean())

    plain, corrected = mean_estimate(KNNEstimator(level_correction=False)), mean_estimate(KNNEstimator())
    assert plain - truth > 0.12  # its anchors were easy
    assert abs(corrected - truth) < 0.5 * (plain - truth)
    panel = PanelEstimator()
    panel.panel(h)
    fit = panel.model_fit("new", h)
    assert 1 / (1 + np.exp(-fit.level)) == pytest.approx(level, abs=1e-6)
    assert abs(mean_estimate(panel) - truth) < 0.5 * (plain - truth)


def test_the_prior_routers_level_of_a_held_out_model_is_corrected():
    from scope_shared.cards import ModelCard
    from scope_shared.evaluation.routers import EvalSplit

    known, benchmarks, new_model = rasch_world(seed=2, n_questions=1500)
    rng = np.random.default_rng(4)
    p_new = new_model(0.2)
    y_new = np.full(len(known), np.nan)
    easy = rng.choice(np.flatnonzero(known.mean(1) >= 0.6), 50, replace=False)
    y_new[easy] = (rng.random(50) < p_new[easy]).astype(float)
    scores = np.c_[known, y_new]
    models = [f"m{j}" for j in range(scores.shape[1])]
    split = EvalSplit("synthetic", 0, models, {m: ModelCard.create(name=m, input_price=1.0, output_price=1.0) for m in models},
                      [f"q{i}" for i in range(len(known))], benchmarks, np.zeros((len(known), 4), np.float32),
                      scores, None, ["t"], np.zeros((1, 4), np.float32))
    acc = split.history_accuracy()
    assert acc[:-1] == pytest.approx(known.mean(0))  # reference models: their plain mean
    assert np.nanmean(y_new) - p_new.mean() > 0.12
    assert abs(acc[-1] - p_new.mean()) < 0.5 * (np.nanmean(y_new) - p_new.mean())


def test_levels_follow_new_outcomes_and_need_two_reference_models():
    from scope_shared.estimators.levels import model_levels, score_matrix_levels

    h, _ = easy_anchor_history(seed=3, n_anchors=30)
    first = model_levels(h)["new"]
    arr = h.model_arrays("ref-0")
    fresh = np.setdiff1d(np.arange(len(h)), h.model_arrays("new").ids)[:20]
    h.add_outcome_arrays(fresh, "new", np.zeros(len(fresh)))  # twenty failures more
    second = model_levels(h)["new"]
    assert second.n == 50 and second.level < first.level
    scores = np.c_[arr.scores, np.where(np.arange(len(arr.scores)) < 40, 1.0, np.nan)]
    only_one = score_matrix_levels(scores, h.benchmarks)  # one reference column: plain means
    assert [e.method for e in only_one] == ["mean", "mean"] and only_one[1].level == 1.0
