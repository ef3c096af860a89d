"""The local transformers backend on a tiny randomly initialised Qwen2 model built in the test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fixtures_reasoning import make_history, make_tiny_lm, memorise, single_thread

from scope_shared.errors import EstimatorError
from scope_shared.estimators.reasoning import ReasoningEstimator, TransformersBackend, parse_prediction
from scope_shared.routing.router import Router

ANSWER = "Analysis: ok.\nPredicted Performance: {len: 120, correct: yes}"
QUERY = "Question: arithmetic sum of numbers 5 and 7?"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), hidden=64)


@pytest.fixture(scope="module")
def small():
    return make_history()


def test_backend_loads_from_directory_only(tmp_path):
    with pytest.raises(EstimatorError, match="not found"):
        TransformersBackend(tmp_path / "missing")


def test_prefix_cache_reuse_gives_the_same_answers(tiny_dir, small):
    hist, emb, cards = small
    est = ReasoningEstimator(TransformersBackend(tiny_dir, max_new_tokens=8, temperature=0), k=3)
    q = [QUERY, "capital city of country item 3?"]
    prompts = est.prompts(q, hist.anchors(emb.embed(q), [c.name for c in cards], est.k), hist)
    shared = TransformersBackend(tiny_dir, max_new_tokens=8, temperature=0, reuse_prefix_cache=True)
    plain = TransformersBackend(tiny_dir, max_new_tokens=8, temperature=0, reuse_prefix_cache=False, batch_size=1)
    a, b = shared.generate(prompts), plain.generate(prompts)
    assert [[s.text for s in x] for x in a] == [[s.text for s in x] for x in b]
    sampled = TransformersBackend(tiny_dir, max_new_tokens=4, temperature=1.0, n_samples=3).generate(prompts)
    assert [len(x) for x in sampled] == [3] * len(prompts)


def test_untrained_model_falls_back_to_knn(tiny_dir, small):
    hist, emb, cards = small
    est = ReasoningEstimator(TransformersBackend(tiny_dir, max_new_tokens=6, temperature=0), k=3)
    d = Router(cards, hist, estimator=est, embedder=emb).route(QUERY, knob={"alpha": 0.5})
    for e in d.estimates.values():
        assert "knn estimate used" in e.rationale
        assert 0.0 <= e.p_correct <= 1.0 and e.expected_output_tokens > 0


def test_estimator_end_to_end_with_local_model(tiny_dir, small):
    hist, emb, cards = small
    torch.manual_seed(0)
    backend = TransformersBackend(tiny_dir, max_new_tokens=40, temperature=0)
    est = ReasoningEstimator(backend, k=3)
    models = [c.name for c in cards]
    prompts = est.prompts([QUERY], hist.anchors(emb.embed([QUERY]), models, est.k), hist)
    memorise(backend, prompts, ANSWER)
    (answers,) = backend.generate(prompts[:1])
    assert parse_prediction(answers[0].text).length == 120
    router = Router(cards, hist, estimator=est, embedder=emb)
    d = router.route(QUERY, knob={"alpha": 1.0})
    for m in models:
        e = d.estimates[m]
        assert e.expected_output_tokens == 120 and e.rationale == "ok."
        # p_correct is measured from the yes/no probabilities at the slot, not a 0/1 vote
        assert 0.5 < e.p_correct < 1.0
    p = backend.generate(prompts)[1][0].p_yes
    assert p is not None and math.isclose(p, d.estimates[models[1]].p_correct, rel_tol=1e-6)
    assert np.isfinite(d.chosen.expected_cost)


def test_vote_when_slot_scoring_is_off(tiny_dir, small):
    hist, emb, cards = small
    backend = TransformersBackend(tiny_dir, max_new_tokens=40, temperature=0)
    est = ReasoningEstimator(backend, k=3)
    models = [c.name for c in cards]
    prompts = est.prompts([QUERY], hist.anchors(emb.embed([QUERY]), models, est.k), hist)
    memorise(backend, prompts, ANSWER)
    voting = TransformersBackend(model=backend.model, tokenizer=backend.tokenizer, max_new_tokens=40,
                                 temperature=0, score_yes_no=False)
    raw = ReasoningEstimator(voting, k=3).predict_for([QUERY], emb.embed([QUERY]), models, hist)
    assert np.all(raw.p_correct == 1.0) and np.all(raw.output_tokens == 120)
    with pytest.raises(EstimatorError, match="both"):
        TransformersBackend(model=backend.model)


def test_slot_scoring_single_and_multi_token_paths_agree(tiny_dir):
    backend = TransformersBackend(tiny_dir, max_new_tokens=4, temperature=0)
    tok = backend.tokenizer
    base = tok(backend.render("Which gas?") + "Analysis: x.\nPredicted Performance: {len: 5, correct:", add_special_tokens=False)["input_ids"]
    yes, no = (tok(w, add_special_tokens=False)["input_ids"] for w in (" yes", " no"))
    assert len(yes) == 1 and len(no) == 1  # as in Qwen's vocabulary
    single = backend._score([base], 1, yes, no, single=True)
    pairs = backend._score([base + yes, base + no], 2, yes, no, single=False)
    assert np.allclose(single, pairs, atol=1e-5)
    # a two-token continuation is scored as the sum of its tokens' log-probabilities
    two = tok(" yes no", add_special_tokens=False)["input_ids"]
    (lp,) = backend._score([base + two, base + no], len(two) + 1, two, no, single=False)[:1]
    with torch.no_grad():
        full = torch.log_softmax(backend.model(input_ids=torch.tensor([base + two])).logits[0].float(), -1)
    want = sum(float(full[len(base) - 1 + t, two[t]]) for t in range(len(two)))
    assert math.isclose(lp, want, rel_tol=1e-4, abs_tol=1e-5)
