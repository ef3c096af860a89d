"""History: incremental adds, anchor search (also for sparse models), atomic save/load round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DIM, toy_history

from scope_shared import History, Outcome, ScopeError
from scope_shared.errors import HistoryStoreError, UnknownModelError


def test_add_dedups_texts_and_aggregates_outcomes(embedder):
    h = History(DIM)
    a = h.add("math question one", embedder.embed_one("math question one"), [Outcome(model="m", correct=1.0, output_tokens=99)])
    b = h.add("  math question one ", embedder.embed_one("math question one"), [Outcome(model="m", correct=0.0, output_tokens=9)])
    assert a == b and len(h) == 1
    arr = h.model_arrays("m")
    assert arr.scores.tolist() == [0.5]
    assert arr.tokens[0] == pytest.approx(np.expm1((np.log1p(99) + np.log1p(9)) / 2), rel=1e-5)
    assert len(h.records) == 2


def test_anchors_are_nearest_questions_the_model_answered(history, embedder):
    q = embedder.embed(["a new math question"])
    anchors = history.anchors(q, ["cheap", "strong"], k=5)
    assert anchors.ids.shape == (1, 2, 5)
    assert anchors.mask.all()
    for j in range(2):
        assert all(history.benchmark(int(i)) == "math" for i in anchors.ids[0, j])
        assert np.all(np.diff(anchors.sims[0, j]) <= 1e-6)  # best first
    assert anchors.scores[0, 0].tolist() == [0.0] * 5  # cheap fails math
    assert anchors.scores[0, 1].tolist() == [1.0] * 5


def test_sparse_model_gets_its_own_nearest_questions(embedder):
    """A model with outcomes on ~1% of questions still gets its k nearest answered ones."""
    h = toy_history(per_topic=300)
    ids = [h.question_id(f"trivia question number {i}") for i in range(3)] + [
        h.question_id(f"code question number {i}") for i in range(6)
    ]
    for qid in ids:
        h.add_outcomes(qid, [Outcome(model="rare", correct=1.0)])
    q = embedder.embed(["a code question about loops"])
    anchors = h.anchors(q, ["rare"], k=5)
    got = set(anchors.ids[0, 0].tolist())
    assert anchors.mask.all() and got <= set(ids)
    assert all(h.benchmark(i) == "code" for i in got)  # the nearest of its answered questions
    # exact brute force agrees
    sims = h.embeddings[ids] @ q[0]
    best = {ids[i] for i in np.argsort(-sims)[:5]}
    assert got == best


def test_anchors_fewer_than_k_and_exclusion(history, embedder):
    h = History(DIM)
    for i in range(3):
        t = f"math item {i}"
        h.add(t, embedder.embed_one(t), [Outcome(model="m", correct=1.0)])
    a = h.anchors(embedder.embed(["math item 0"]), ["m"], k=5, exclude_ids=np.array([0]))
    assert a.mask[0, 0].sum() == 2 and 0 not in a.ids[0, 0][a.mask[0, 0]]


def test_unknown_model_and_bad_dims(history):
    with pytest.raises(UnknownModelError, match="no outcomes"):
        history.anchors(np.ones((1, DIM)), ["nobody"], 3)
    with pytest.raises(ScopeError, match="dimension"):
        history.anchors(np.ones((1, DIM + 1)), ["cheap"], 3)
    with pytest.raises(ScopeError, match="shape"):
        history.add_questions(["x"], np.ones((1, DIM + 2)))
    with pytest.raises(ScopeError):
        history.add_outcomes(10_000, [Outcome(model="cheap", correct=1.0)])


def test_save_load_round_trip(tmp_path, history, embedder):
    history.save(tmp_path / "h")
    loaded = History.load(tmp_path / "h")
    assert len(loaded) == len(history) and loaded.models == history.models
    assert np.allclose(loaded.embeddings, history.embeddings)
    assert [r.outcome for r in loaded.records] == [r.outcome for r in history.records]
    assert loaded.cards == history.cards
    q = embedder.embed(["code question"])
    a, b = history.anchors(q, history.models, 7), loaded.anchors(q, loaded.models, 7)
    assert np.array_equal(a.ids, b.ids) and np.allclose(a.scores, b.scores, equal_nan=True)
    # incremental growth then re-save replaces the old generation
    loaded.add("trivia extra", embedder.embed_one("trivia extra"), [Outcome(model="cheap", correct=1.0)])
    loaded.save(tmp_path / "h")
    again = History.load(tmp_path / "h")
    assert len(again) == len(history) + 1
    files = sorted(p.name for p in (tmp_path / "h").iterdir())
    assert files == ["cards-2.json", "embeddings-2.npy", "manifest.json", "outcomes-2.npz", "questions-2.jsonl"]


def test_load_errors_name_the_problem(tmp_path, history):
    with pytest.raises(HistoryStoreError, match="does not exist"):
        History.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HistoryStoreError, match="manifest.json is missing"):
        History.load(tmp_path / "empty")
    history.save(tmp_path / "h")
    manifest = json.loads((tmp_path / "h" / "manifest.json").read_text())
    # another version
    (tmp_path / "h" / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(HistoryStoreError, match="version 99"):
        History.load(tmp_path / "h")
    # corrupt data file
    (tmp_path / "h" / "manifest.json").write_text(json.dumps(manifest))
    emb = tmp_path / "h" / manifest["files"]["embeddings"]
    emb.write_bytes(emb.read_bytes()[:-10])
    with pytest.raises(HistoryStoreError, match="checksum mismatch"):
        History.load(tmp_path / "h")
    # unreadable manifest
    (tmp_path / "h" / "manifest.json").write_text("{not json")
    with pytest.raises(HistoryStoreError, match="corrupt"):
        History.load(tmp_path / "h")


def test_failed_save_leaves_previous_store_intact(tmp_path, history, embedder, monkeypatch):
    """A crash in the middle of a save (simulated) leaves the old store loadable and unchanged."""
    history.save(tmp_path / "h")
    before = {p.name: p.read_bytes() for p in (tmp_path / "h").iterdir()}
    history.add("math extra", embedder.embed_one("math extra"), [Outcome(model="strong", correct=1.0)])
    import scope_shared.history.store as store

    real = store.atomic_write_json

    def crash(*a, **k):
        raise OSError("disk full while writing manifest")

    monkeypatch.setattr(store, "atomic_write_json", crash)
    with pytest.raises(OSError):
        history.save(tmp_path / "h")
    monkeypatch.setattr(store, "atomic_write_json", real)
    loaded = History.load(tmp_path / "h")
    assert len(loaded) == len(history) - 1
    for name, data in before.items():
        assert (tmp_path / "h" / name).read_bytes() == data


def test_store_is_not_pickle(tmp_path, history):
    history.save(tmp_path / "h")
    for p in (tmp_path / "h").iterdir():
        assert b"\x80\x04" not in p.read_bytes()[:2]  # no pickle header anywhere
    npy = next((tmp_path / "h").glob("embeddings-*.npy"))
    np.load(npy, allow_pickle=False)
