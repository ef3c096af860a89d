"""Learned estimator serves models with and without output lengths, whatever it was trained on.

Issue 11, item 4: a network trained on a history without output lengths (llmrouter-9 has none)
gave ``p_correct = 0`` to every model onboarded with output-token counts, and the reverse. Here a
small network is trained on a toy history with or without lengths, then a new model with a flat
accuracy of 0.7 is onboarded with or without lengths: its estimates must sit near 0.7 in all four
combinations.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from scope_shared.cards import ModelCard, Outcome
from scope_shared.errors import EstimatorError
from scope_shared.estimators.base import RawEstimates
from scope_shared.estimators.features import (
    hide_lengths,
    pair_features,
    summarize_model,
)
from scope_shared.estimators.learned import LearnedConfig, LearnedEstimator
from scope_shared.history import History

DIM = 12
N_CLUSTERS = 3
SKILL = np.array([[0.9, 0.2, 0.5], [0.2, 0.9, 0.4], [0.5, 0.5, 0.9], [0.6, 0.6, 0.6]])
MODELS = [f"m{j}" for j in range(len(SKILL))]
NEW_ACC = 0.7


def _embed(texts: list[str], clusters: list[int]) -> np.ndarray:
    centres = np.random.default_rng(5).normal(size=(N_CLUSTERS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(len(texts))
    v = centres[clusters] + rng.normal(scale=0.15, size=(len(texts), DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _history(with_lengths: bool, n: int = 180, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    clusters = [i % N_CLUSTERS for i in range(n)]
    texts = [f"c{c} q{i}" for i, c in enumerate(clusters)]
    h = History(DIM, "toy")
    ids = h.add_questions(texts, _embed(texts, clusters), [f"b{c}" for c in clusters])
    correct = rng.random((n, len(MODELS))) < SKILL[:, clusters].T
    tokens = 40 * np.arange(1, len(MODELS) + 1)[None, :] + 80 * np.array(clusters)[:, None] + rng.integers(0, 10, (n, len(MODELS)))
    for qid in ids:  # the same outcomes with or without lengths
        outs = [
            Outcome(model=m, correct=float(correct[qid, j]), output_tokens=float(tokens[qid, j]) if with_lengths else None)
            for j, m in enumerate(MODELS)
        ]
        h.add_outcomes(qid, outs)
    h.cards = {m: ModelCard(name=m, input_price=1.0, output_price=1.0) for m in MODELS}
    return h


def _train(with_lengths: bool) -> tuple[LearnedEstimator, History]:
    history = _history(with_lengths)
    cfg = LearnedConfig(k=16, hidden=32, views=(None, 40), epochs=8, patience=3, batch_size=256, lr=5e-3, seed=0)
    est = LearnedEstimator(cfg)
    est.fit(history, show_progress=False)
    return est, history


@pytest.fixture(scope="module")
def trained_without() -> tuple[LearnedEstimator, History]:
    return _train(False)


@pytest.fixture(scope="module")
def trained_with() -> tuple[LearnedEstimator, History]:
    return _train(True)


def _onboard(history: History, with_lengths: bool, name: str = "newbie") -> float:
    """Give ``name`` outcomes (flat accuracy ``NEW_ACC``) on every history question; returns its accuracy.

    The outcomes are the same with or without lengths; only the output-token counts differ.
    """
    rng = np.random.default_rng(11)
    correct = rng.random(len(history)) < NEW_ACC
    tokens = 300 + rng.integers(0, 50, size=len(history))
    for qid in range(len(history)):
        tok = float(tokens[qid]) if with_lengths else None
        history.add_outcomes(qid, [Outcome(model=name, correct=float(correct[qid]), output_tokens=tok)])
    return float(history.model_arrays(name).scores.mean())


def _fresh() -> np.ndarray:
    return np.asarray(_history(False, n=60, seed=3).embeddings)


def _predict(est: LearnedEstimator, history: History, model: str) -> RawEstimates:
    q = _fresh()
    return est.predict_for([""] * len(q), q, [model], history)


def _mean_p(est: LearnedEstimator, history: History, model: str) -> float:
    return float(_predict(est, history, model).p_correct.mean())


@pytest.mark.parametrize("trained_on", ["without", "with"])
@pytest.mark.parametrize("onboarded", ["without", "with"])
def test_onboarded_model_is_not_collapsed(trained_on, onboarded, trained_without, trained_with) -> None:
    est, _ = trained_without if trained_on == "without" else trained_with
    history = _history(trained_on == "with")  # a fresh copy of the training history to onboard into
    acc = _onboard(history, onboarded == "with")
    raw = _predict(est, history, "newbie")
    p = float(raw.p_correct.mean())
    assert abs(p - acc) < 0.15, (trained_on, onboarded, p, acc)
    assert raw.p_correct.std() < 0.2  # a flat model: no query is pushed to 0 or 1
    # lengths are predicted where the model came with them; elsewhere the router uses its default
    assert np.isfinite(raw.output_tokens).all() == (onboarded == "with")
    if onboarded == "with":
        assert np.all(np.abs(np.log(raw.output_tokens) - np.log(325)) < 0.5)


def test_net_trained_without_lengths_ignores_them(trained_without) -> None:
    """Length evidence it never saw in training cannot move the estimate at all."""
    est, _ = trained_without
    with_len, without = _history(False), _history(False)
    _onboard(with_len, True)
    _onboard(without, False)
    np.testing.assert_allclose(_predict(est, with_len, "newbie").p_correct, _predict(est, without, "newbie").p_correct, atol=1e-6)


def test_hidden_lengths_match_a_length_free_history() -> None:
    """`hide_lengths` (used in training) gives exactly the features of a model without lengths."""
    with_len, without = _history(True), _history(False)
    q = _fresh()
    feats = []
    for h in (with_len, without):
        anchors = h.anchors(q, MODELS, 16)
        feats.append(pair_features(q, anchors, [summarize_model(h, m) for m in MODELS]))
    hand, aset, base = feats[0]
    assert np.isfinite(base).all()
    hide_lengths(hand, aset, base, np.ones(base.shape, bool))
    for a, b in zip((hand, aset, base), feats[1]):
        np.testing.assert_array_equal(a, b)


def test_old_format_is_refused_with_a_reason(trained_without, tmp_path) -> None:
    est, _ = trained_without
    est.save(tmp_path / "est")
    cfg = tmp_path / "est" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["version"] = 1
    cfg.write_text(json.dumps(meta))
    with pytest.raises(EstimatorError, match="format version 1.*retrain"):
        LearnedEstimator.load(tmp_path / "est")


def test_known_models_unchanged_by_length_evidence(trained_with) -> None:
    """Trained with lengths: hiding a model's lengths must not move its accuracy estimate far."""
    est, history = trained_with
    no_len = _history(False)
    for m in MODELS:
        a = _mean_p(est, history, m)
        b = _mean_p(est, no_len, m)
        assert abs(a - b) < 0.1, (m, a, b)
