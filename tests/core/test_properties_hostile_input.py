"""Properties behind the issue-15 fixes: fenced prompts, a parser that cannot be made slow, the
kNN fallback guard, finite embeddings, and store files fuzzed beyond what the case table tries."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CARDS, DIM, toy_embedder, toy_history
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scope_shared import FunctionEmbedder, History, Router, ScopeError
from scope_shared.errors import HistoryStoreError
from scope_shared.estimators import Estimator, KNNEstimator
from scope_shared.estimators.guard import checked_predict
from scope_shared.estimators.reasoning import build_prompt, parse_prediction, parse_prompt
from scope_shared.estimators.reasoning.parser import MAX_PREDICTED_TOKENS, PredictionParseError
from scope_shared.estimators.reasoning.prompt import AnchorExample, fence
from scope_shared.history.index_spec import NAMED, check_factory_string

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
FORMATTY = st.lists(
    st.sampled_from(["\n", "\r\n", "\u2028", " ", "**", "`", "#", "### Output:", "Example 3:", "Question:", "Performance:",
                     "Predicted Performance:", "{len: 5, correct: yes}", "{ len:", "Analysis:", "Output Format", "x", "yes"]),
    max_size=30,
).map("".join)


# ---------------------------------------------------------------- fenced prompts
HEADINGS = len(re.findall(r"^#", build_prompt("m", "q", []), re.M))


@SETTINGS
@given(FORMATTY, FORMATTY, st.integers(0, 4))
def test_no_question_can_add_structure_to_a_prompt(question, anchor, n):
    examples = [AnchorExample(anchor, 10 * i, i % 2 == 0) for i in range(n)]
    prompt = build_prompt("model", question, examples)
    assert len(re.findall(r"^Performance: \{len: (?:\d+|unknown), correct: (?:yes|no)\}$", prompt, re.M)) == n
    assert len(re.findall(r"^Example \d+:", prompt, re.M)) == n
    assert not re.search(r"^Predicted Performance: \{len: \d", prompt, re.M)
    assert len(re.findall(r"^#", prompt, re.M)) == HEADINGS  # the template's own headings only
    fields = parse_prompt(prompt)
    assert len(fields.examples) == n and fields.model == "model"


def test_ordinary_questions_are_left_as_they_are():
    for q in ("What is 2+2?", "Solve:\n  x + 1 = 3\nthen report x.", "Use C# or F#?", "A) yes\nB) no"):
        assert fence(q) == q


# ---------------------------------------------------------------- the parser
@pytest.mark.parametrize("unit", ["*", "\n", " ", "*\n", "** ", "1,", "correct*", "analysis:\n", "`_", "predicted "])
def test_parser_takes_linear_time_on_four_megabytes(unit):
    """4 MB built to make regexes backtrack: the old parser needed 18 s for 40 KB of '*' (quadratic:
    about two days for this); no timing assertion, a quadratic parser just never finishes here."""
    text = unit * (4_000_000 // len(unit)) + "Predicted Performance: {len: 5, correct: yes}"
    try:
        p = parse_prediction(text)
    except PredictionParseError:
        return
    assert p.length == 5 and p.correct


@pytest.mark.parametrize("length", ["9" * 5000, "9" * 400, "1" + "0" * 30, str(MAX_PREDICTED_TOKENS + 1), "1,2,3,4,5,6,7,8"])
def test_absurd_lengths_are_unparsable(length):
    with pytest.raises(PredictionParseError, match="length|malformed"):
        parse_prediction(f"Analysis: x\nPredicted Performance: {{len: {length}, correct: yes}}")
    assert parse_prediction("Predicted Performance: {len: 1,000, correct: no}").length == 1000


# ---------------------------------------------------------------- the guard
def test_the_fallback_says_so_and_keeps_good_pairs(history):
    class HalfBroken(Estimator):  # its second model's numbers are NaN
        name, k = "half", 10

        def predict(self, queries, query_embs, anchors, history):
            raw = KNNEstimator().predict(queries, query_embs, anchors, history)
            raw.p_correct[:, 1] = np.nan
            raw.p_correct[:, 0] = 0.123
            return raw

    embs = toy_embedder().embed(["a math question"])
    anchors = history.anchors(embs, ["cheap", "mid", "strong"], 10)
    raw = checked_predict(HalfBroken(), ["a math question"], embs, anchors, history)
    knn = KNNEstimator().predict(["a math question"], embs, anchors, history)
    assert raw.p_correct[0, 0] == 0.123 and raw.p_correct[0, 1] == knn.p_correct[0, 1]
    assert raw.rationales[0][0] is None and "knn estimate used" in raw.rationales[0][1]
    d = Router(CARDS, history, embedder=toy_embedder(), estimator=HalfBroken()).route("a math question")
    assert "knn estimate used" in d.estimates["mid"].rationale


def test_a_misconfigured_estimator_still_names_its_problem(history):
    from scope_shared.errors import EstimatorError
    from scope_shared.estimators.learned import LearnedEstimator

    with pytest.raises(EstimatorError, match="not trained"):
        Router(CARDS, history, embedder=toy_embedder(), estimator=LearnedEstimator()).route("a math question")


# ---------------------------------------------------------------- embeddings
def test_nothing_non_finite_is_cached_or_primed():
    calls = []

    def flaky(texts):
        calls.append(list(texts))
        return np.full((len(texts), DIM), np.nan) if len(calls) == 1 else np.ones((len(texts), DIM))

    emb = FunctionEmbedder(flaky, DIM)
    with pytest.raises(ScopeError, match="non-finite or all-zero"):
        emb.embed(["a"])
    assert np.allclose(emb.embed(["a"])[0], np.ones(DIM) / np.sqrt(DIM)) and len(calls) == 2  # asked again
    with pytest.raises(ScopeError):
        emb.prime(["b", "c"], np.array([np.ones(DIM), np.full(DIM, np.inf)]))
    assert "b" not in emb._cache  # all or nothing


# ---------------------------------------------------------------- stores, fuzzed
@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("store") / "h"
    toy_history(per_topic=4).save(d)
    return d


def _rewrite(d: Path, key: str, data: bytes) -> None:
    import hashlib

    m = json.loads((d / "manifest.json").read_text())
    (d / m["files"][key]).write_bytes(data)
    m["sha256"][key] = hashlib.sha256(data).hexdigest()
    (d / "manifest.json").write_text(json.dumps(m))


def _load_is_safe(d: Path) -> None:
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    try:
        h = History.load(d)
    except HistoryStoreError:
        pass
    else:
        h.search(h.embeddings[:1], 2)
        h.save(d.parent / "resaved")
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


shapes = st.lists(st.one_of(st.integers(0, 16), st.integers(2**31, 2**62)), min_size=0, max_size=3).map(tuple)
descrs = st.sampled_from(["<f4", "<f8", "<i4", "|u1", "|O", ">f4", "<c8", "|b1", "<U3", "|V8"])


@SETTINGS
@given(shapes, descrs, st.booleans(), st.integers(0, 4096))
def test_any_npy_header_in_any_array_file_is_refused_or_loads(pristine, tmp_path_factory, shape, descr, fortran, payload):
    d = tmp_path_factory.mktemp("npy") / "h"
    shutil.copytree(pristine, d)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    _rewrite(d, "embeddings", buf.getvalue() + b"\0" * payload)
    _load_is_safe(d)


names = st.one_of(
    st.sampled_from(["../x", "/etc/passwd", "a/b", ".hidden", "", "questions-1.jsonl\0", "questions-2.jsonl", "C:\\x"]),
    st.text(max_size=20), st.integers(), st.none(),
)


@SETTINGS
@given(st.sampled_from(["questions", "embeddings", "outcomes", "cards"]), names)
def test_any_file_name_in_the_manifest_is_refused_or_the_writers_own(pristine, tmp_path_factory, key, name):
    d = tmp_path_factory.mktemp("names") / "h"
    shutil.copytree(pristine, d)
    m = json.loads((d / "manifest.json").read_text())
    keep = m["files"][key] == name
    m["files"][key] = name
    (d / "manifest.json").write_text(json.dumps(m))
    if keep:
        History.load(d)
    else:
        with pytest.raises(HistoryStoreError):
            History.load(d)


spec_parts = st.sampled_from(["IVF", "HNSW", "PQ", "SQ", "RR", "PCA", "OPQ", "Flat", "x", ",", "_", "0", "1", "2", "8", "16", "64", "fp16", "Refine", "LSH", "{0}"])


@SETTINGS
@given(st.lists(spec_parts, min_size=1, max_size=6).map("".join))
def test_no_index_spec_reaches_faiss_unless_it_is_allowed(spec):
    """Specs outside the allow-list fail before faiss; those inside build, train and search
    (a faiss crash would kill this test process)."""
    assume(spec not in NAMED)  # the named kinds map to allowed strings
    try:
        check_factory_string(DIM, spec)
    except ScopeError:
        with pytest.raises(ScopeError):
            History(DIM, index={"spec": spec, "nlist": 1, "train_size": 8})
        return
    h = History(DIM, index={"spec": spec, "nlist": 1, "train_size": 8})
    x = np.random.default_rng(0).standard_normal((12, DIM)).astype(np.float32)
    try:
        h.add_questions([f"q{i}" for i in range(12)], x)
    except ScopeError:  # faiss refused to train (too few points for the codebook): a clean error
        return
    h.search(x[:2], 3)
