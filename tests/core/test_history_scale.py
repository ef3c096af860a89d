"""Scalable history internals: numpy columns (bulk == one by one), compact records, vector index
kinds (exact by default, IVF-SQ8 past a threshold) and vectorised anchors (== brute force)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CARDS, toy_embedder, toy_history
from hypothesis import given, settings
from hypothesis import strategies as st

from scope_shared import History, KNNEstimator, Outcome, Router, ScopeError
from scope_shared.history.columns import ModelColumn
from scope_shared.history.index import VectorIndex

rows = st.lists(
    st.tuples(st.integers(0, 30), st.floats(0, 1), st.one_of(st.none(), st.floats(0, 5000))), max_size=60
)


@settings(max_examples=60, deadline=None)
@given(rows, st.integers(1, 7))
def test_bulk_add_equals_one_by_one(data, chunk):
    one, bulk = ModelColumn(), ModelColumn()
    for q, s, t in data:
        one.add(q, s, t)
    for i in range(0, len(data), chunk):
        part = data[i : i + chunk]
        bulk.add_many(
            np.array([r[0] for r in part]), np.array([r[1] for r in part]),
            np.array([np.nan if r[2] is None else r[2] for r in part]),
        )
    a, b = one.arrays(), bulk.arrays()
    assert a.ids.tolist() == b.ids.tolist() == sorted({r[0] for r in data})
    for i, q in enumerate(a.ids):
        mine = [r for r in data if r[0] == q]
        assert a.scores[i] == pytest.approx(np.mean([r[1] for r in mine]), abs=1e-5)
        toks = [r[2] for r in mine if r[2] is not None]
        want = np.expm1(np.mean(np.log1p(toks))) if toks else np.nan
        for arr in (a, b):
            assert arr.scores[i] == pytest.approx(a.scores[i], abs=1e-5)
            assert arr.tokens[i] == pytest.approx(want, rel=1e-4, abs=1e-3, nan_ok=True)


def test_records_are_compact_and_round_trip_through_the_store(tmp_path):
    h = toy_history(per_topic=5)
    h.add_outcomes(0, [Outcome(model="cheap", correct=0.25, output_tokens=7, input_tokens=3, latency_s=1.5, source="judge")])
    h.add_outcome_arrays([1, 2, 2], ["mid", "strong", "mid"], [1.0, 0.0, 0.5], [np.nan, 10, 20], source="bulk")
    recs = list(h.records)
    assert len(recs) == h.n_records == 15 * 3 + 4
    last4 = [(r.question_id, r.outcome.model_dump(exclude_none=True)) for r in recs[-4:]]
    assert last4[0] == (0, {"model": "cheap", "correct": 0.25, "output_tokens": 7.0, "input_tokens": 3.0,
                            "latency_s": 1.5, "source": "judge"})
    assert last4[1] == (1, {"model": "mid", "correct": 1.0, "source": "bulk"})
    assert h.records[-1].outcome.correct == 0.5 and h.records[-2].outcome.model == "strong"
    h.save(tmp_path / "s")
    g = History.load(tmp_path / "s")
    assert [(r.question_id, r.outcome) for r in g.records] == [(r.question_id, r.outcome) for r in recs]
    for m in h.models:
        a, b = h.model_arrays(m), g.model_arrays(m)
        assert a.ids.tolist() == b.ids.tolist() and np.allclose(a.scores, b.scores)
        assert np.allclose(a.tokens, b.tokens, equal_nan=True)


def _reference_anchors(h: History, q: np.ndarray, model: str, k: int) -> list[list[int]]:
    arr = h.model_arrays(model)
    sims = q @ h.embeddings[arr.ids].T
    return [arr.ids[np.argsort(-s, kind="stable")[:k]].tolist() for s in sims]


@pytest.mark.parametrize("n_models", [3, 70, 130])  # 130 models: two words of the model bitmap
def test_vectorised_anchors_equal_brute_force(n_models):
    rng = np.random.default_rng(n_models)
    n = 3000
    h = History(16, index="flat")
    x = rng.standard_normal((n, 16)).astype(np.float32)
    h.add_questions([f"q{i}" for i in range(n)], x)
    coverage = rng.choice([1.0, 0.3, 0.05, 0.004], n_models)
    models = []
    for j in range(n_models):
        ids = np.flatnonzero(rng.random(n) < coverage[j])
        if len(ids) == 0:
            ids = np.array([j])
        models.append(f"m{j}")
        h.add_outcome_arrays(ids, f"m{j}", rng.random(len(ids)), rng.integers(1, 900, len(ids)))
    h.add_outcomes(5, [Outcome(model="m0", correct=1.0)])  # a pending single add is seen too
    q = rng.standard_normal((7, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a = h.anchors(q, models, k=12)
    for j, m in enumerate(models):
        ref = _reference_anchors(h, q, m, 12)
        arr = h.model_arrays(m)
        for i in range(len(q)):
            got = a.ids[i, j][a.mask[i, j]].tolist()
            assert got == ref[i]
            pos = np.searchsorted(arr.ids, got)
            assert np.allclose(a.scores[i, j][a.mask[i, j]], arr.scores[pos])


def _clustered(n: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((50, dim))
    x = centers[rng.integers(0, 50, n)] + 0.3 * rng.standard_normal((n, dim))
    q = centers[rng.integers(0, 50, 20)] + 0.3 * rng.standard_normal((20, dim))
    norm = lambda v: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return norm(x), norm(q)


@pytest.mark.parametrize("spec", ["flat", "sq8", "fp16", "ivf-sq8"])  # ivf-pq: k-means per sub-quantiser, too slow here
def test_index_kinds_recall_against_exact(spec):
    x, q = _clustered(6000)
    idx = VectorIndex(32, spec, nlist=32, nprobe=8, pq_m=8, train_size=3000)
    for part in np.array_split(x, 4):
        idx.add(part)
    assert len(idx) == 6000 and idx.exact == (spec == "flat")
    _, got = idx.search(q, 20)
    ref = np.argsort(-(q @ x.T), axis=1)[:, :20]
    rec = np.mean([len(set(got[i]) & set(ref[i])) / 20 for i in range(len(q))])
    assert rec >= {"flat": 1.0, "fp16": 0.99, "sq8": 0.9, "ivf-sq8": 0.8}[spec]
    err = np.abs(idx.vectors(np.arange(0, 6000, 97)) - x[::97]).max()
    assert err <= {"flat": 0.0, "fp16": 1e-3, "sq8": 0.02}.get(spec, 0.5)


def test_auto_index_is_exact_then_switches_and_survives_save_load(tmp_path):
    x, q = _clustered(5000)
    h = History(32, index={"spec": "auto", "auto_threshold": 4000, "nlist": 32, "nprobe": 16})
    h.add_questions([f"q{i}" for i in range(3000)], x[:3000])
    assert h.index.exact
    h.add_questions([f"q{i}" for i in range(3000, 5000)], x[3000:])
    assert not h.index.exact and len(h) == 5000
    assert h.index.nbytes() < 5000 * 32 * 4  # smaller than float32
    h.add_outcome_arrays(np.arange(5000), "m", np.ones(5000))
    h.save(tmp_path / "s")
    g = History.load(tmp_path / "s")
    assert not g.index.exact and g.index.config() == h.index.config()
    ref = np.argsort(-(q @ x.T), axis=1)[:, :10]
    for hist in (h, g):  # the store keeps decoded vectors; the reloaded index is retrained on them
        _, got = hist.search(q, 10)
        assert np.mean([len(set(got[i]) & set(ref[i])) / 10 for i in range(len(q))]) >= 0.8


def test_router_estimates_are_valid_and_bad_estimates_still_rejected():
    r = Router(CARDS, toy_history(), embedder=toy_embedder(), estimator=KNNEstimator())  # the guard's last resort
    est = r.estimate("a math question")
    assert set(est) == {"cheap", "mid", "strong"}
    assert est["strong"].p_correct > est["cheap"].p_correct
    assert type(est["cheap"]).model_validate(est["cheap"].model_dump()) == est["cheap"]

    class Broken(type(r.estimator)):  # an estimator returning p > 1 must not slip through
        def predict(self, *a, **kw):  # type: ignore[no-untyped-def]
            raw = super().predict(*a, **kw)
            raw.p_correct = raw.p_correct + 2.0
            return raw

    bad = Router(CARDS, toy_history(), embedder=toy_embedder(), estimator=Broken())
    with pytest.raises(ValueError):
        bad.estimate("a math question")


@pytest.mark.slow
def test_hundred_thousand_questions_hundred_models_memory_and_anchors():
    rng = np.random.default_rng(1)
    n, m, d = 100_000, 100, 64
    h = History(d)  # auto: IVF-SQ8 past 50k
    x = rng.standard_normal((n, d)).astype(np.float32)
    h.add_questions([f"q{i}" for i in range(n)], x)
    who = np.argsort(rng.random((n, m)), axis=1)[:, :10]
    for j in range(m):
        ids = np.flatnonzero((who == j).any(axis=1))
        h.add_outcome_arrays(ids, f"m{j}", rng.random(len(ids)) < 0.5, rng.integers(1, 999, len(ids)))
    assert h.n_records == n * 10
    per_outcome = (sum(c.nbytes() for c in h._columns.values()) + h.outcome_log.nbytes()) / h.n_records
    assert per_outcome < 64  # pydantic records + dict columns were ~1 KB
    assert not h.index.exact and h.index.nbytes() / n < d * 4
    a = h.anchors(rng.standard_normal((3, d)).astype(np.float32), [f"m{j}" for j in range(m)], k=40)
    assert a.mask.sum(-1).min() == 40  # every model got its k anchors


def test_counts_widen_past_uint16():
    col = ModelColumn()
    col.add_many(np.zeros(70_000, dtype=np.int64), np.r_[np.ones(35_000), np.zeros(35_000)], np.full(70_000, 9.0))
    col.add(0, 1.0, 9.0)
    a = col.arrays()
    assert a.ids.tolist() == [0] and a.scores[0] == pytest.approx(35_001 / 70_001) and a.tokens[0] == pytest.approx(9.0)


@pytest.mark.parametrize(
    "index",
    [{"spec": "ivf-sq8", "nlist": 0}, {"spec": "ivf-sq8", "nprobe": -1}, {"spec": "ivf-pq", "pq_m": 7},
     {"spec": "ivf-sq8", "nlist": 64, "train_size": 10}, "IVF0,Flat", "HNSW0", "NoSuch", {"spec": 5},
     {"spec": "auto", "auto_threshold": 0}, {"spec": "ivf-sq8", "nlist": True}],
)
def test_bad_index_configs_raise_scope_error_not_a_faiss_crash(index):
    with pytest.raises(ScopeError):  # faiss itself segfaults on some of these (e.g. IVF0)
        History(32, index=index)


def test_failed_index_training_leaves_the_history_unchanged():
    h = History(32, index={"spec": "IVF16,PQ4x12", "nlist": 16, "train_size": 16})  # 2^12 centroids, 20 points
    x, _ = _clustered(20)
    with pytest.raises(ScopeError, match="could not be trained"):
        h.add_questions([f"q{i}" for i in range(20)], x)
    assert len(h) == 0 and "q0" not in h and len(h.index) == 0
    h2 = History(32, index="flat")
    assert h2.add_questions(["q0"], x[:1]) == [0]


def test_version_1_stores_are_still_read(tmp_path):
    """A store written by the first format (outcomes as JSON lines) loads the same."""
    import hashlib
    import json

    h = toy_history(per_topic=3)
    h.add_outcomes(0, [Outcome(model="cheap", correct=0.5, output_tokens=3, input_tokens=2, latency_s=0.1, source="judge")])
    h.save(tmp_path / "h")
    d = tmp_path / "h"
    manifest = json.loads((d / "manifest.json").read_text())
    rows = "".join(json.dumps(r) + "\n" for r in h.outcome_log.rows()).encode()
    (d / manifest["files"]["outcomes"]).unlink()
    (d / "outcomes-1.jsonl").write_bytes(rows)
    manifest.update(version=1, files={**manifest["files"], "outcomes": "outcomes-1.jsonl"},
                    sha256={**manifest["sha256"], "outcomes": hashlib.sha256(rows).hexdigest()})
    for k in ("outcome_models", "outcome_sources", "index", "feedback_applied"):
        manifest.pop(k)
    (d / "manifest.json").write_text(json.dumps(manifest))
    g = History.load(d)
    assert [(r.question_id, r.outcome) for r in g.records] == [(r.question_id, r.outcome) for r in h.records]
