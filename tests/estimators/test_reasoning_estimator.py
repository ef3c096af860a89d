"""Prompt building, strict parsing, and the reasoning estimator with a LangChain chat-model backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fixtures_reasoning import make_history
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage

from scope_shared.errors import EstimatorError
from scope_shared.estimators import KNNEstimator
from scope_shared.estimators.reasoning import (
    AnchorExample,
    LangChainBackend,
    PredictionParseError,
    ReasoningEstimator,
    build_prompt,
    parse_prediction,
    parse_prompt,
)
from scope_shared.estimators.reasoning.backends import ReasoningBackend, Sample, p_yes_from_logprobs
from scope_shared.estimators.reasoning.prompt import check_template
from scope_shared.routing.router import Router

LONG_Q = "Explain, step by step, " + "why the sky appears blue at noon and red at sunset; " * 12


def test_prompt_layout_and_round_trip():
    examples = [AnchorExample(LONG_Q, 812, True), AnchorExample("What is 2+2?", None, False)]
    prompt = build_prompt("gpt-x", "Which gas do plants absorb?", examples)
    heads = ["### Task", "### Target Model", "Example 1:", "Example 2:", "### Target Question",
             "### Prediction Requirements", "### Output Format (STRICT)", "### Important Notes", "### Output:"]
    pos = [prompt.index(h) for h in heads]
    assert pos == sorted(pos)
    assert prompt.endswith("### Output:\n")
    assert "Performance: {len: 812, correct: yes}" in prompt
    assert "Performance: {len: unknown, correct: no}" in prompt
    assert LONG_Q in prompt  # full anchor text, not truncated to 200 characters
    back = parse_prompt(prompt)
    assert back.model == "gpt-x"
    assert back.question == "Which gas do plants absorb?"
    assert back.examples == tuple(examples)


def test_custom_template_checked():
    assert build_prompt("m", "q", [], "Q={question} M={model} {examples}") == "Q=q M=m "
    with pytest.raises(EstimatorError, match="fields"):
        check_template("{question} {model} {unknown_field}")
    with pytest.raises(EstimatorError, match="question"):
        check_template("only {model}")


def test_parser_well_formed_with_quoted_anchor_len_and_emphasis():
    text = (
        "**Analysis:** Example 1 had Performance: {len: 812, correct: yes}, a long derivation.\n"
        "An earlier draft said Predicted Performance: {len: 9, correct: no} but that was wrong.\n"
        "The target is simpler.\n"
        "**Predicted Performance:** {len: 1,240, correct: **No**}\n"
    )
    p = parse_prediction(text)
    assert (p.length, p.correct) == (1240, False)  # the LAST prediction line, not an anchor's len
    assert p.analysis.startswith("Example 1 had Performance: {len: 812")
    assert "**" not in p.analysis
    assert p.slot_prefix.endswith("correct:")
    nocot = parse_prediction("Predicted Performance: {len: 77, correct: yes}")
    assert (nocot.length, nocot.correct, nocot.analysis) == (77, True, "")


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("Analysis: looks easy, len: 200, correct: yes", "no 'Predicted Performance:'"),
        ("Analysis: x\nPredicted Performance: {len: many, correct: yes}", "malformed"),
        ("Analysis: x\nPredicted Performance: {len: 100, correct: maybe}", "malformed"),
        ("Analysis: x\nPredicted Performance: {len: 100, correct: yes}\nPredicted Performance: soon", "malformed"),
    ],
)
def test_parser_malformed(text, match):
    with pytest.raises(PredictionParseError, match=match):
        parse_prediction(text)
    assert issubclass(PredictionParseError, EstimatorError)


def answer(length: int, correct: str, note: str = "looks like its anchors") -> str:
    return f"Analysis: {note}.\nPredicted Performance: {{len: {length}, correct: {correct}}}"


@pytest.fixture(scope="module")
def small():
    return make_history()


def test_estimator_with_chat_model_end_to_end(small):
    hist, emb, cards = small
    fake = FakeListChatModel(responses=[answer(120, "no", "cheap fails"), answer(640, "yes", "strong wins")])
    est = ReasoningEstimator(LangChainBackend(fake, max_concurrency=1), k=3)
    router = Router(cards, hist, estimator=est, embedder=emb)
    d = router.route("Question: arithmetic sum of numbers 5 and 7?", knob={"alpha": 1.0})
    cheap, strong = d.estimates["cheap-model"], d.estimates["strong-model"]
    assert (cheap.p_correct, cheap.expected_output_tokens) == (0.0, 120.0)
    assert (strong.p_correct, strong.expected_output_tokens) == (1.0, 640.0)
    assert strong.rationale == "strong wins." and strong.estimator == "reasoning"
    assert strong.n_anchors == 3
    assert d.model == "strong-model"


def test_estimator_prompts_use_history_anchors(small):
    hist, emb, _ = small
    est = ReasoningEstimator(LangChainBackend(FakeListChatModel(responses=["x"])), k=4)
    q = ["capital city of country item?"]
    embs = emb.embed(q)
    anchors = hist.anchors(embs, ["cheap-model"], est.k)
    (prompt,) = est.prompts(q, anchors, hist)
    fields = parse_prompt(prompt)
    assert fields.model == "cheap-model" and len(fields.examples) == 4
    for slot, ex in enumerate(fields.examples):
        assert ex.question == hist.text(int(anchors.ids[0, 0, slot]))
        assert ex.length == int(anchors.tokens[0, 0, slot])
        assert ex.correct == bool(anchors.scores[0, 0, slot] >= 0.5)


def test_malformed_retried_once_then_fallback(small):
    hist, emb, cards = small
    # order of calls: first batch (cheap, strong), retry batch (cheap only)
    fake = FakeListChatModel(responses=["I think it's fine", answer(500, "yes"), "still no format"])
    est = ReasoningEstimator(LangChainBackend(fake, max_concurrency=1), k=3)
    q = ["Question: chemistry gas reaction item?"]
    raw = est.predict_for(q, emb.embed(q), ["cheap-model", "strong-model"], hist)
    knn = KNNEstimator().predict_for(q, emb.embed(q), ["cheap-model", "strong-model"], hist)
    assert fake.i == 0 and math.isclose(raw.p_correct[0, 0], knn.p_correct[0, 0])
    assert math.isclose(raw.output_tokens[0, 0], knn.output_tokens[0, 0])
    assert "after 2 attempt(s)" in raw.rationales[0][0] and "knn estimate used" in raw.rationales[0][0]
    assert raw.p_correct[0, 1] == 1.0 and raw.output_tokens[0, 1] == 500


def test_retry_recovers(small):
    hist, emb, _ = small
    fake = FakeListChatModel(responses=["garbage", answer(90, "yes", "second try")])
    est = ReasoningEstimator(LangChainBackend(fake, max_concurrency=1), k=2)
    q = ["capital city of country item?"]
    raw = est.predict_for(q, emb.embed(q), ["cheap-model"], hist)
    assert raw.p_correct[0, 0] == 1.0 and raw.rationales[0][0] == "second try."


class Exploding(ReasoningBackend):
    def generate(self, prompts):
        raise RuntimeError("GPU on fire")


def test_backend_exception_never_crashes_routing(small):
    hist, emb, cards = small
    router = Router(cards, hist, estimator=ReasoningEstimator(Exploding()), embedder=emb)
    d = router.route("capital city of country item?", knob={"alpha": 0.5})
    assert all("GPU on fire" in e.rationale and "knn estimate used" in e.rationale for e in d.estimates.values())


def test_samples_vote_when_no_logprobs(small):
    hist, emb, _ = small
    fake = FakeListChatModel(responses=[answer(100, "yes"), answer(300, "no"), answer(200, "yes"), "junk"])
    est = ReasoningEstimator(LangChainBackend(fake, n_samples=4, max_concurrency=1), k=2)
    q = ["capital city of country item?"]
    raw = est.predict_for(q, emb.embed(q), ["cheap-model"], hist)
    assert math.isclose(raw.p_correct[0, 0], 2 / 3)  # the malformed sample is ignored
    assert raw.output_tokens[0, 0] == 200


def test_p_yes_from_openai_style_logprobs():
    meta = {"logprobs": {"content": [
        {"token": " yes", "logprob": -5.0, "top_logprobs": []},  # in the analysis: ignored
        {"token": "correct", "logprob": 0.0},
        {"token": " yes", "logprob": math.log(0.6),
         "top_logprobs": [{"token": " yes", "logprob": math.log(0.6)}, {"token": " no", "logprob": math.log(0.2)}]},
        {"token": "}", "logprob": 0.0},
    ]}}
    assert math.isclose(p_yes_from_logprobs(meta), 0.75)
    assert p_yes_from_logprobs({}) is None and p_yes_from_logprobs(None) is None


class LogprobBackend(ReasoningBackend):
    """Returns fixed answers with a measured p_yes, as a logprob-capable provider would."""

    def generate(self, prompts):
        return [[Sample(answer(150, "yes"), p_yes=0.7)] for _ in prompts]


def test_measured_p_yes_is_used(small):
    hist, emb, _ = small
    q = ["capital city of country item?"]
    raw = ReasoningEstimator(LogprobBackend()).predict_for(q, emb.embed(q), ["cheap-model", "strong-model"], hist)
    assert np.allclose(raw.p_correct, 0.7) and np.allclose(raw.output_tokens, 150)


def test_bad_arguments():
    with pytest.raises(EstimatorError):
        ReasoningEstimator(LogprobBackend(), k=0)
    with pytest.raises(EstimatorError):
        ReasoningEstimator(LogprobBackend(), k=6, n_considered=5)
    with pytest.raises(EstimatorError):
        LangChainBackend(FakeListChatModel(responses=["x"]), n_samples=0)


def test_chat_message_text_extraction():
    from scope_shared.estimators.reasoning.backends import _text

    assert _text(AIMessage(content=answer(1, "no"))) == answer(1, "no")


def test_one_failing_chat_call_spoils_only_its_pair(small):
    from langchain_core.runnables import RunnableLambda

    hist, emb, _ = small

    def flaky(messages):
        if "### Target Model\ncheap-model" in messages[-1].content:
            raise TimeoutError("provider timed out")
        return AIMessage(content=answer(321, "yes", "fine"))

    est = ReasoningEstimator(LangChainBackend(RunnableLambda(flaky)), k=2)
    q = ["capital city of country item?"]
    raw = est.predict_for(q, emb.embed(q), ["cheap-model", "strong-model"], hist)
    assert "knn estimate used" in raw.rationales[0][0] and "provider timed out" in raw.rationales[0][0]
    assert raw.output_tokens[0, 1] == 321 and raw.rationales[0][1] == "fine."
