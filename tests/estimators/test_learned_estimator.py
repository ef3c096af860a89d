"""Learned estimator, calibration and onboarding on small synthetic histories (fast, CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scope_shared.cards import ModelCard, Outcome
from scope_shared.embedders import FunctionEmbedder
from scope_shared.errors import EstimatorError, ScopeError
from scope_shared.estimators import KNNEstimator
from scope_shared.estimators.calibration import (
    CalibratedEstimator,
    Calibrator,
    calibrate,
    expected_calibration_error,
    fit_calibrator,
)
from scope_shared.estimators.learned import LearnedConfig, LearnedEstimator
from scope_shared.metrics import auroc
from scope_shared.history import History
from scope_shared.onboarding import suggest_questions
from scope_shared.routing.router import Router

DIM = 16
N_CLUSTERS = 4
BENCHES = ["alpha", "beta", "gamma", "delta"]


def _centres() -> np.ndarray:
    rng = np.random.default_rng(123)
    c = rng.normal(size=(N_CLUSTERS, DIM))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def _embed_texts(texts: list[str]) -> np.ndarray:
    """Text 'c<cluster> q<i>' -> its cluster centre plus deterministic per-text noise."""
    centres = _centres()
    out = []
    for t in texts:
        c = int(t.split()[0][1:]) % N_CLUSTERS if t.startswith("c") and t.split()[0][1:].isdigit() else 0
        noise = np.random.default_rng(abs(hash(t)) % (2**32)).normal(scale=0.12, size=DIM)
        v = centres[c] + noise
        out.append(v / np.linalg.norm(v))
    return np.array(out, dtype=np.float32)


# each model's skill per cluster (probability of a correct answer)
SKILL = np.array(
    [
        [0.9, 0.2, 0.5, 0.3],
        [0.2, 0.9, 0.3, 0.5],
        [0.5, 0.5, 0.9, 0.1],
        [0.3, 0.4, 0.2, 0.9],
        [0.6, 0.6, 0.6, 0.6],
        [0.1, 0.8, 0.8, 0.1],
    ]
)
MODELS = [f"m{j}" for j in range(len(SKILL))]


def toy_history(n: int = 240, seed: int = 0, models: list[str] | None = None) -> History:
    rng = np.random.default_rng(seed)
    texts = [f"c{i % N_CLUSTERS} q{i} s{seed}" for i in range(n)]
    h = History(DIM, "toy")
    ids = h.add_questions(texts, _embed_texts(texts), [BENCHES[i % N_CLUSTERS] for i in range(n)])
    for i, qid in enumerate(ids):
        c = i % N_CLUSTERS
        outs = [
            Outcome(model=m, correct=float(rng.random() < SKILL[j, c]), output_tokens=float(50 + 100 * c + rng.integers(0, 10)))
            for j, m in enumerate(MODELS)
            if models is None or m in models
        ]
        h.add_outcomes(qid, outs)
    h.cards = {m: ModelCard(name=m, input_price=1.0, output_price=1.0) for m in MODELS if models is None or m in models}
    return h


def small_config(**kw) -> LearnedConfig:
    base = dict(k=16, hidden=32, views=(None, 30), epochs=12, patience=4, batch_size=256, lr=5e-3, seed=0)
    base.update(kw)
    return LearnedConfig(**base)


@pytest.fixture(scope="module")
def trained() -> tuple[LearnedEstimator, History]:
    history = toy_history()
    est = LearnedEstimator(small_config())
    est.fit(history, show_progress=False)
    return est, history


def test_training_converges_and_generalises(trained) -> None:
    est, history = trained
    rep = est.report
    assert rep is not None and rep.best_epoch >= 0
    assert min(rep.train_loss) < rep.train_loss[0]
    test = toy_history(n=120, seed=7)  # new questions, same skills
    q = test.embeddings
    raw = est.predict_for([""] * len(q), q, MODELS, history)
    truth = np.stack([test.model_arrays(m).scores for m in MODELS], axis=1)
    assert auroc(raw.p_correct, truth) > 0.7
    # output length: lengths depend on the cluster, so the estimate must track it
    assert np.corrcoef(np.log(raw.output_tokens[:, 0]), np.log(np.stack([test.model_arrays(m).tokens for m in MODELS], 1)[:, 0]))[0, 1] > 0.8


def test_no_model_name_in_features(trained) -> None:
    """Renaming every model gives the same predictions: names are not inputs."""
    est, history = trained
    renamed = History(DIM, "toy")
    renamed.add_questions([history.text(i) for i in range(len(history))], np.asarray(history.embeddings), history.benchmarks)
    for r in history.records:
        renamed.add_outcomes(r.question_id, [r.outcome.model_copy(update={"model": "x-" + r.outcome.model})])
    q = toy_history(n=20, seed=3).embeddings
    a = est.predict_for([""] * 20, q, MODELS, history).p_correct
    b = est.predict_for([""] * 20, q, ["x-" + m for m in MODELS], renamed).p_correct
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_save_load_round_trip(trained, tmp_path) -> None:
    est, history = trained
    est.save(tmp_path / "est")
    loaded = LearnedEstimator.load(tmp_path / "est")
    q = toy_history(n=30, seed=5).embeddings
    a = est.predict_for([""] * 30, q, MODELS, history)
    b = loaded.predict_for([""] * 30, q, MODELS, history)
    assert np.array_equal(a.p_correct, b.p_correct)
    assert np.array_equal(a.output_tokens, b.output_tokens)
    text = (tmp_path / "est" / "config.json").read_text()
    assert json.loads(text)["format"] == "scope-learned-estimator"
    assert not any(f'"{m}"' in text for m in MODELS)  # no model identity is stored
    data = bytearray((tmp_path / "est" / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "est" / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(EstimatorError, match="checksum"):
        LearnedEstimator.load(tmp_path / "est")
    with pytest.raises(EstimatorError):
        LearnedEstimator.load(tmp_path / "missing")


def test_training_is_deterministic() -> None:
    history = toy_history(n=120)
    cfg = small_config(epochs=3)
    a, b = LearnedEstimator(cfg), LearnedEstimator(cfg)
    a.fit(history, show_progress=False)
    b.fit(history, show_progress=False)
    q = toy_history(n=10, seed=9).embeddings
    assert np.array_equal(
        a.predict_for([""] * 10, q, MODELS, history).p_correct, b.predict_for([""] * 10, q, MODELS, history).p_correct
    )


def test_untrained_estimator_says_so() -> None:
    history = toy_history(n=40)
    with pytest.raises(EstimatorError, match="not trained"):
        LearnedEstimator().predict_for([""], history.embeddings[:1], MODELS, history)


def test_calibrator_reduces_ece_on_miscalibrated_toy(tmp_path) -> None:
    rng = np.random.default_rng(0)
    p_true = rng.uniform(0.02, 0.98, size=8000)
    y = (rng.random(8000) < p_true).astype(float)
    z = np.log(p_true / (1 - p_true))
    p_raw = 1 / (1 + np.exp(-(2.5 * z - 1.0)))  # over-confident and biased low, as raw scores often are
    before = expected_calibration_error(p_raw[4000:], y[4000:])
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(p_raw[:4000], y[:4000], method)
        after = expected_calibration_error(cal(p_raw[4000:]), y[4000:])
        assert before > 0.1 and after < 0.03 and after < before / 4, (method, before, after)
        cal.save(tmp_path / f"{method}.json")
        again = Calibrator.load(tmp_path / f"{method}.json")
        np.testing.assert_allclose(again(p_raw[:50]), cal(p_raw[:50]))
    with pytest.raises(EstimatorError):
        fit_calibrator(p_raw[:5], y[:5])
    (tmp_path / "bad.json").write_text('{"format": "scope-calibrator", "method": "eval"}')
    with pytest.raises(EstimatorError):
        Calibrator.load(tmp_path / "bad.json")


def test_calibrated_wrapper_works_for_knn_and_learned(trained) -> None:
    est, history = trained
    ids = np.arange(0, len(history), 2)
    for base in (KNNEstimator(k=16), est):
        wrapped = calibrate(base, history, ids, "platt")
        assert isinstance(wrapped, CalibratedEstimator) and wrapped.k == base.k
        q = history.embeddings[:5]
        p = wrapped.predict_for([""] * 5, q, MODELS, history).p_correct
        assert p.shape == (5, len(MODELS)) and np.all((p > 0) & (p < 1))


def _router(history: History, estimator) -> Router:
    return Router(history.cards.values(), history, estimator=estimator, embedder=FunctionEmbedder(_embed_texts, DIM, "toy"))


@pytest.mark.parametrize("which", ["learned", "knn"])
def test_new_model_with_20_outcomes_is_routed_to_when_best(trained, which) -> None:
    est, _ = trained
    history = toy_history(models=MODELS[1:])  # m0 (best on cluster 0) is the newcomer
    router = _router(history, est if which == "learned" else KNNEstimator(k=16))
    rng = np.random.default_rng(1)
    outcomes = {}
    for i in range(20):  # 20 outcomes on history questions: always right on cluster 0, weak elsewhere
        c = 0 if i < 10 else i % N_CLUSTERS
        text = history.text(4 * i if i < 10 else 4 * (i - 10) + 1 + i % 3)
        outcomes[text] = {"correct": 1.0 if c == 0 else float(rng.random() < 0.2), "output_tokens": 60.0}
    router.add_model(ModelCard(name="newbie", input_price=1.0, output_price=1.0), outcomes)
    assert history.n_outcomes("newbie") == 20
    queries = [f"c0 fresh question {i}" for i in range(10)]
    decisions = router.route_batch(queries, knob={"min_accuracy": 0.99})
    picks = [d.model for d in decisions]
    assert picks.count("newbie") >= 8, [d.summary() for d in decisions[:2]]
    # on a cluster where it is weak it is not chosen
    weak = [d.model for d in router.route_batch([f"c2 fresh question {i}" for i in range(10)], knob={"min_accuracy": 0.99})]
    assert weak.count("newbie") <= 2


def test_onboarding_picks_a_diverse_set() -> None:
    history = toy_history(n=200)
    picks = suggest_questions(history, n=12)
    assert len(picks) == 12 and len({p.question_id for p in picks}) == 12
    assert {p.benchmark for p in picks} == set(BENCHES)  # every benchmark
    diffs = np.array([p.difficulty for p in picks])
    assert diffs.max() - diffs.min() > 0.3  # easy and hard questions both
    emb = history.embeddings[[p.question_id for p in picks]]
    sims = emb @ emb.T
    assert sims[~np.eye(12, dtype=bool)].max() < 0.999  # no near-duplicates
    with pytest.raises(ScopeError):
        suggest_questions(history, n=0)


def test_cli_train_and_suggest(tmp_path, capsys) -> None:
    from scope_shared.cli import main
    from scope_shared.cli.learned import load_estimator

    history = toy_history(n=160)
    history.save(tmp_path / "hist")
    assert main(["train", "--history", str(tmp_path / "hist"), "--out", str(tmp_path / "est"), "--epochs", "3"]) == 0
    est = load_estimator(tmp_path / "est")
    assert isinstance(est, CalibratedEstimator)
    p = est.predict_for([""] * 4, history.embeddings[:4], MODELS, history).p_correct
    assert p.shape == (4, len(MODELS))
    assert main(["history", "suggest", "--history", str(tmp_path / "hist"), "-n", "5"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines() if x.startswith('{"question"')]
    assert len(lines) == 5


def test_registered_in_routing_benchmark_and_excludes_unseen_models() -> None:
    from types import SimpleNamespace

    from scope_shared.evaluation.scope_routers import SCOPE_ESTIMATORS

    history = toy_history(n=120)
    est = SCOPE_ESTIMATORS["scope-learned"](history, SimpleNamespace(unseen=["m5"], seed=0))
    assert isinstance(est, CalibratedEstimator)
    rep = est.base.report
    n_models_trained = rep.n_train_pairs + rep.n_val_pairs
    assert n_models_trained == 120 * 5 * 2  # 5 seen models x 2 views (all, 50): m5 never trained on
    p = est.predict_for([""] * 3, history.embeddings[:3], MODELS, history).p_correct
    assert p.shape == (3, len(MODELS))
