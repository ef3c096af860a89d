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
