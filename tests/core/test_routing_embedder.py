"""The routing-tuned embedder: training on a history's outcomes (deterministic, refuses too little
data, reads only the models it is given), saving in the model2vec layout, loading by name offline,
and histories made with it refusing another embedder.

The base is a small static model in the fast embedder's layout: the bundled MiniLM's tokenizer over
its 3,000 most frequent tokens with a seeded random table (no teacher run: training does not care
where the rows came from). The questions are synthetic: two benchmarks, and a marker word that decides
which models get a question right, so there is something for the tuning to find.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scope_shared import History, ModelCard, Router, ScopeError
from scope_shared.cli import main
from scope_shared.embedders import default_model_path, named
from scope_shared.embedders.distill import (
    BUILD_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    kept_vocabulary,
    static_tokenizer_json,
    write_static_model,
)
from scope_shared.embedders.static import StaticEmbedder, Truncation
from scope_shared.embedders.tuning import (
    TuningConfig,
    TuningData,
    centred_table,
    embed_pooled,
    load_tuned,
    pooling_matrix,
    save_tuned,
    tune_table,
    validation_models,
    validation_split,
)
from scope_shared.history.reembed import tuning_data

MODELS = ["strong", "weak", "coder"]
FAST_CONFIG = TuningConfig(max_epochs=3, patience=2, time_budget_s=60, batch_size=128, min_questions=50,
                           min_outcomes=200)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    teacher = json.loads((Path(default_model_path()) / TOKENIZER_FILE).read_text())
    tokens = kept_vocabulary(teacher["model"]["vocab"], 3000)
    table = np.random.default_rng(0).normal(size=(len(tokens), 32)).astype(np.float32)
    table[0] = 0.0
    out = tmp_path_factory.mktemp("base") / "m2v-small"
    return write_static_model(out, table, static_tokenizer_json(teacher, tokens), "all-MiniLM-L6-v2",
                              {"pca_dims": 32, "sif_coefficient": 1e-4})


@pytest.fixture
def base(base_dir):
    return StaticEmbedder(base_dir, truncation=Truncation(tail=64))


def synthetic(n: int = 400, seed: int = 0) -> TuningData:
    """Questions whose outcomes follow a marker word ("code" / "history" / "number")."""
    rng = np.random.default_rng(seed)
    fillers = "the a what which how many people city year water light music game friend house".split()
    markers = {"code": [0.9, 0.1, 0.95], "history": [0.8, 0.3, 0.2], "number": [0.7, 0.6, 0.1]}
    texts, scores, groups = [], [], []
    for i in range(n):
        kind = list(markers)[i % 3]
        words = list(rng.choice(fillers, size=8)) + [kind, str(i)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        scores.append((rng.random(3) < np.array(markers[kind])).astype(float))
        groups.append("bench-a" if i % 2 else "bench-b")
    tokens = np.exp(rng.normal(5, 0.5, size=(n, 3)))
    return TuningData(texts=texts, scores=np.array(scores), output_tokens=tokens, groups=groups, models=MODELS)


def test_training_is_deterministic_under_a_seed_and_learns(base):
    data = synthetic()
    t1, r1 = tune_table(base, data, FAST_CONFIG)
    t2, r2 = tune_table(base, data, FAST_CONFIG)
    np.testing.assert_array_equal(t1, t2)
    assert r1.val_loss_best == r2.val_loss_best and r1.epochs == r2.epochs
    assert t1.shape == base.table.shape and np.isfinite(t1).all()
    # the outcomes are learnable: validation loss drops below the base embedder's
    assert r1.improved and r1.val_loss_best < r1.val_loss_base
    t3, _ = tune_table(base, data, TuningConfig(**{**FAST_CONFIG.__dict__, "seed": 1}))
    assert not np.array_equal(t1, t3)


def test_centring_subtracts_the_texts_mean_vector_and_stays_a_table(base):
    texts = synthetic().texts
    pooled = pooling_matrix(base, texts)
    raw = embed_pooled(base.table, pooled)
    centred = centred_table(base.table, pooled)
    # the texts' unnormalised vectors under the centred table average to zero ...
    indptr, ids, vals = pooled
    sums = np.stack([(base.table[ids[a:b]] * vals[a:b, None]).sum(0) for a, b in zip(indptr[:-1], indptr[1:])])
    shifted = np.stack([(centred[ids[a:b]] * vals[a:b, None]).sum(0) for a, b in zip(indptr[:-1], indptr[1:])])
    np.testing.assert_allclose(shifted, sums - sums.mean(0), atol=1e-5)
    # ... so the mean of the unit vectors moves toward 0 and the embedder reads the table as it is
    assert np.linalg.norm(embed_pooled(centred, pooled).mean(0)) < np.linalg.norm(raw.mean(0))
    # no epochs: the centred table itself (what training starts from)
    untrained, report = tune_table(base, synthetic(), TuningConfig(**{**FAST_CONFIG.__dict__, "max_epochs": 0, "centre": True}))
    np.testing.assert_allclose(untrained, centred, atol=1e-6)
    assert report.epochs == 0 and not report.improved


def test_refuses_a_history_without_enough_outcomes(base):
    data = synthetic(60)
    with pytest.raises(ScopeError, match="not enough outcomes to tune a routing embedder"):
        tune_table(base, data, TuningConfig(min_questions=200, min_outcomes=2000))
    empty = TuningData(texts=data.texts, scores=np.full((60, 3), np.nan))
    with pytest.raises(ScopeError, match="0 outcomes"):
        tune_table(base, empty, FAST_CONFIG)
    with pytest.raises(ScopeError, match="scores must lie in"):
        TuningData(texts=["a"], scores=np.array([[2.0]]))


def _history(data: TuningData, held_out: np.ndarray) -> History:
    """A history with the three known models' outcomes plus a held-out model's ``held_out`` ones."""
    h = History(8, "toy")
    h.add_questions(data.texts, np.eye(8, dtype=np.float32)[np.arange(len(data.texts)) % 8], data.groups)
    ids = np.arange(len(data.texts))
    for j, m in enumerate(MODELS):
        h.add_outcome_arrays(ids, m, data.scores[:, j], data.output_tokens[:, j])
    h.add_outcome_arrays(ids, "held-out", held_out, np.full(len(ids), 100.0))
    return h


def test_never_reads_held_out_models_outcomes(base):
    data = synthetic()
    rng = np.random.default_rng(5)
    h1 = _history(data, (rng.random(len(data.texts)) < 0.5).astype(float))
    h2 = _history(data, 1.0 - (rng.random(len(data.texts)) < 0.5).astype(float))  # other outcomes
    d1, d2 = tuning_data(h1, MODELS), tuning_data(h2, MODELS)
    assert d1.models == MODELS and d1.scores.shape == (len(data.texts), 3)
    t1, _ = tune_table(base, d1, FAST_CONFIG)
    t2, _ = tune_table(base, d2, FAST_CONFIG)
    np.testing.assert_array_equal(t1, t2)
    # with every model, the held-out one's outcomes are read, and they change the result
    t3, _ = tune_table(base, tuning_data(h1), FAST_CONFIG)
    assert not np.array_equal(t1, t3)
    with pytest.raises(ScopeError, match="no outcomes of nobody"):
        tuning_data(h1, ["nobody"])


def test_saved_tuned_embedder_loads_offline_by_name_and_histories_refuse_another(base, tmp_path, monkeypatch):
    data = synthetic()
    table, report = tune_table(base, data, FAST_CONFIG)
    monkeypatch.setenv("SCOPE_EMBEDDER_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = save_tuned(named.routing_model_dir(), table, base, report, FAST_CONFIG)
    for f in (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE, BUILD_FILE):
        assert (out / f).is_file()
    assert json.loads((out / CONFIG_FILE).read_text())["model_type"] == "model2vec"
    tuned = load_tuned(out)
    assert tuned.name.startswith("routing-") and tuned.name.endswith("+tail64")
    assert tuned.truncation == base.truncation
    # the saved table (float16 on disk) gives the trained vectors
    np.testing.assert_allclose(tuned.embed(data.texts[:20]), embed_pooled(table, pooling_matrix(base, data.texts[:20])),
                               atol=2e-3)
    by_name = named.named_embedder("routing")
    assert by_name is not None and by_name.name == tuned.name
    assert named.named_embedder(tuned.name) is by_name
    with pytest.raises(ScopeError, match="re-embed the history or train on it again"):
        named.named_embedder("routing-000000000000+tail64")

    history = History(tuned.dim, tuned.name)
    history.add_questions(data.texts, tuned.embed(data.texts), data.groups)
    ids = np.arange(len(data.texts))
    for j, m in enumerate(MODELS):
        history.add_outcome_arrays(ids, m, data.scores[:, j], data.output_tokens[:, j])
    cards = [ModelCard(name=m, input_price=1.0 + j, output_price=1.0 + j) for j, m in enumerate(MODELS)]
    router = Router(cards, history)  # the recorded name finds the tuned embedder
    assert router.embedder.name == tuned.name
    assert router.route("how many code friend house").model in MODELS
    with pytest.raises(ScopeError, match="not comparable"):
        Router(cards, history, embedder=base)
    # another tuned table (other seed) has another name: refused too
    other, rep = tune_table(base, data, TuningConfig(**{**FAST_CONFIG.__dict__, "seed": 3}))
    other_dir = save_tuned(tmp_path / "other", other, base, rep, FAST_CONFIG)
    with pytest.raises(ScopeError, match="not comparable"):
        Router(cards, history, embedder=load_tuned(other_dir))


def test_load_tuned_refuses_a_folder_that_is_not_one(base_dir, tmp_path, monkeypatch):
    with pytest.raises(ScopeError, match="not a routing-tuned embedder"):
        load_tuned(base_dir)
    monkeypatch.setenv("SCOPE_EMBEDDER_DIR", str(tmp_path))
    with pytest.raises(ScopeError, match="no routing-tuned embedder"):
        named.routing_embedder()


def test_cli_trains_on_a_saved_history_within_its_time_budget(base, tmp_path, monkeypatch, capsys):
    data = synthetic(800)  # 2,400 outcomes: above the default minimum
    history = _history(data, np.ones(len(data.texts)))
    history.save(tmp_path / "hist")
    monkeypatch.setattr(named, "fast_embedder", lambda *a, **k: base)
    out = tmp_path / "tuned"
    main(["embedder", "train", "--history", str(tmp_path / "hist"), "--models", *MODELS, "--out", str(out),
          "--time-budget", "1", "--max-epochs", "50"])
    report = json.loads(capsys.readouterr().out)
    assert report["out"] == str(out) and report["name"].startswith("routing-")
    assert report["stopped"] in ("time budget", "patience") and report["epochs"] < 50
    assert load_tuned(out).name == report["name"]


def test_held_out_models_are_seeded_a_share_never_all_and_none_without_two():
    known = np.ones((10, 9), dtype=bool)
    a, b = validation_models(known, 1 / 3, seed=0), validation_models(known, 1 / 3, seed=0)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 3 and len(set(a.tolist())) == 3
    assert any(not np.array_equal(a, validation_models(known, 1 / 3, seed=s)) for s in range(1, 6))
    assert len(validation_models(known, 0.01, 0)) == 1  # at least one
    assert len(validation_models(np.ones((10, 2), bool), 0.9, 0)) == 1  # never all
    assert validation_models(known, 0.0, 0).size == 0  # 0: questions only
    one = np.zeros((10, 3), dtype=bool)
    one[:, 1] = True
    assert validation_models(one, 1 / 3, 0).size == 0  # one model with outcomes: nothing to hold out
    only_second = np.zeros((10, 4), dtype=bool)
    only_second[:, [1, 3]] = True
    assert set(validation_models(only_second, 0.5, 0).tolist()) <= {1, 3}  # models without outcomes never
    with pytest.raises(ScopeError, match="val_model_fraction"):
        TuningConfig(val_model_fraction=1.0)


def test_stopping_on_held_out_models_watches_them_and_nothing_reads_training_models_on_held_out_questions(base):
    data = synthetic()
    guard = TuningConfig(**{**FAST_CONFIG.__dict__, "val_model_fraction": 1 / 3})
    table, report = tune_table(base, data, guard)
    held = [MODELS.index(m) for m in report.val_models]
    assert len(held) == 1 and report.improved  # the markers transfer to the model the gradient never saw
    rng = np.random.default_rng(9)
    _, val = validation_split(data.groups, len(data.texts), guard.val_fraction, guard.seed)
    # the training models' outcomes on the validation questions are read by nothing: changing them
    # changes nothing
    scores = data.scores.copy()
    train_cols = [j for j in range(len(MODELS)) if j not in held]
    scores[np.ix_(val, train_cols)] = (rng.random((len(val), len(train_cols))) < 0.5).astype(float)
    same, same_report = tune_table(base, replace_scores(data, scores), guard)
    np.testing.assert_array_equal(table, same)
    assert same_report.val_loss_best == report.val_loss_best
    # the held-out models' outcomes are the stopping signal: other outcomes, another validation loss,
    # the same models held out (drawn by seed, not by outcome)
    noise = data.scores.copy()
    noise[:, held] = (rng.random((len(data.texts), len(held))) < 0.5).astype(float)
    _, noise_report = tune_table(base, replace_scores(data, noise), guard)
    assert noise_report.val_models == report.val_models
    assert noise_report.val_loss_base != report.val_loss_base
    # by default (no model held out) the stopping signal is every model's outcomes on held-out questions
    _, default_report = tune_table(base, data, FAST_CONFIG)
    assert default_report.val_models == [] and default_report.val_loss_base != report.val_loss_base


def replace_scores(data: TuningData, scores: np.ndarray) -> TuningData:
    return TuningData(texts=data.texts, scores=scores, output_tokens=data.output_tokens, groups=data.groups,
                      models=data.models)
