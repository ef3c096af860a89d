"""Onboarding through the Python API: three stand-in chat models end to end, then a router over only
them; the spend cap, the dry run, retries, failures, resumption, and every kind of model input."""

from __future__ import annotations

import numpy as np
import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, LLMMetadata
from llama_index.core.llms import CustomLLM

import standin_models as sm
from scope_shared import FunctionEmbedder, Router, load_pack, onboard
from scope_shared.errors import OnboardingError
from scope_shared.onboarding import DEFAULT_ANCHORS, ONBOARDING_SOURCE, RetryPolicy, as_client
from scope_shared.onboarding.graders import sandbox_support
from scope_shared.onboarding.scripted import ScriptedAnswerer
from scope_shared.tokens import approx_token_count

PACK = load_pack()
RUN_CODE = sandbox_support()[0]
NAMES = list(sm.STANDINS)


def pack_embedder() -> FunctionEmbedder:
    """The pack's stored MiniLM vectors looked up by text (routing pack questions without loading a model)."""
    return FunctionEmbedder(lambda texts: PACK.vectors([PACK.find(t).id for t in texts]), PACK.dim, name="all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three stand-ins onboarded into one history (the pack's, with its nine known models)."""
    log = tmp_path_factory.mktemp("onboarding") / "feedback.log"
    history = PACK.history()
    models, results = {}, {}
    for name in NAMES:
        models[name] = sm.chat(name)
        results[name] = onboard(models[name], sm.card(name), history=history, feedback_log=log,
                                run_code=RUN_CODE, show_progress=False)
    return history, models, results, log


def test_three_standins_are_graded_as_scripted(three):
    history, models, results, _ = three
    for name in NAMES:
        res, script = results[name], models[name].answerer
        assert len(res.results) == DEFAULT_ANCHORS and res.report.graded == DEFAULT_ANCHORS
        assert sorted(script.calls) == sorted(r.question_id for r in res.results)  # each anchor asked once
        for r in res.results:  # every grader agrees with what the script meant
            assert (r.score == 1.0) == script.intended[r.question_id], (name, r.benchmark, r.detail)
            assert r.input_tokens > 0 and r.output_tokens > 0 and not r.counted
        assert history.n_outcomes(name) == DEFAULT_ANCHORS and history.cards[name].name == name
        assert {r.benchmark for r in res.results} == set(PACK.benchmarks) if RUN_CODE else True
    acc = {n: results[n].accuracy for n in NAMES}
    assert acc["big-70b"] > acc["maths-7b"] > acc["tiny-1b"]
    # the same fixed anchor set for every model (the paper's protocol)
    anchor_sets = [[q.id for q in results[n].plan.anchors] for n in NAMES]
    assert anchor_sets[0] == anchor_sets[1] == anchor_sets[2]
    # real usage: the verbose models spend more output tokens, and cost follows the card
    med = {n: results[n].report.median_output_tokens for n in NAMES}
    assert med["tiny-1b"] < med["maths-7b"] < med["big-70b"]
    r0 = results["big-70b"].results[0]
    assert r0.cost == pytest.approx((r0.input_tokens * 2.0 + r0.output_tokens * 6.0) / 1e6)


def test_report_has_intervals_per_benchmark(three):
    report = three[2]["maths-7b"].report
    text = report.text()
    assert "accuracy" in text and "95% CI" in text and "median" in text and "measured" in text
    assert report.overall.low <= report.overall.accuracy <= report.overall.high
    assert sum(r.n for r in report.per_benchmark) == report.graded
    maths = [r for r in report.per_benchmark if r.name in sm.MATHS]
    others = [r for r in report.per_benchmark if r.name not in sm.MATHS]
    assert np.mean([r.accuracy for r in maths]) > np.mean([r.accuracy for r in others])
    assert report.spent_total == pytest.approx(sum(r.cost for r in three[2]["maths-7b"].results))


def test_router_over_only_the_onboarded_models(three):
    history = three[0]
    router = Router([history.cards[n] for n in NAMES], history, embedder=pack_embedder())
    anchors = {q.id for q in three[2]["big-70b"].plan.anchors}
    held_out = [q for q in PACK.questions if q.id not in anchors][::25]
    estimates = router.estimate_batch([q.text for q in held_out])
    assert all(set(e) == set(NAMES) for e in estimates)
    p = {n: np.array([e[n].p_correct for e in estimates]) for n in NAMES}
    assert p["big-70b"].mean() > p["maths-7b"].mean() and p["big-70b"].mean() > p["tiny-1b"].mean()
    is_maths = np.array([q.benchmark in sm.MATHS for q in held_out])
    # it learned what it is good at (modestly: the default kNN shrinks 50 anchors hard toward the mean)
    assert p["maths-7b"][is_maths].mean() > p["maths-7b"][~is_maths].mean() + 0.02
    strict = router.route_batch([q.text for q in held_out], knob={"min_accuracy": 0.85})
    thrifty = router.route_batch([q.text for q in held_out], knob={"tradeoff": 1e6})
    assert all(d.model in NAMES for d in strict + thrifty)
    assert np.mean([d.model == "big-70b" for d in strict]) > 0.5
    assert np.mean([d.model == "tiny-1b" for d in thrifty]) > 0.8


def test_rerun_with_the_log_asks_nothing_again(three):
    _, _, results, log = three
    history = PACK.history()  # a fresh process would start like this
    fresh = sm.chat("tiny-1b")
    again = onboard(fresh, sm.card("tiny-1b"), history=history, feedback_log=log, run_code=RUN_CODE, show_progress=False)
    assert fresh.answerer.calls == []
    assert again.report.reused_from_log == DEFAULT_ANCHORS and again.report.calls_made == 0
    assert again.accuracy == pytest.approx(results["tiny-1b"].accuracy)
    assert history.n_outcomes("tiny-1b") == DEFAULT_ANCHORS  # replayed once, not twice


def test_spend_cap_stops_and_a_bigger_cap_resumes(tmp_path):
    log = tmp_path / "feedback.log"
    card = {"name": "capped", "input_price": 5.0, "output_price": 15.0, "default_output_tokens": 60}
    plan = onboard(None, card, dry_run=True, n_anchors=20).plan
    cap = sum(c.cost for c in plan.todo[:8]) + 1e-9  # room for about 8 calls at the expected cost
    model = ScriptedAnswerer("capped", 0.5)
    first = onboard(model, card, n_anchors=20, max_spend=cap, feedback_log=log, concurrency=1, show_progress=False)
    rep = first.report
    assert 0 < rep.calls_made < 20 and rep.skipped_by_cap == 20 - rep.calls_made
    assert rep.spent_total <= cap * 1.5  # one call may exceed its estimate
    assert "stopped at the spend cap" in rep.text()
    second = onboard(model, card, n_anchors=20, max_spend=1.0, feedback_log=log, concurrency=1, show_progress=False)
    assert second.report.reused_from_log == rep.calls_made and second.report.graded == 20
    assert len(model.calls) == len(set(model.calls)) == 20  # no question asked twice across the runs
    with pytest.raises(OnboardingError, match="max_spend"):
        onboard(model, card, max_spend=-1.0, dry_run=True)


def test_dry_run_calls_nothing_and_prices_the_plan():
    model = ScriptedAnswerer("dry", 0.5)
    card = {"name": "dry", "input_price": 1.0, "output_price": 2.0}
    res = onboard(model, card, n_anchors=30, max_spend=0.0001, dry_run=True)
    assert res.dry_run and model.calls == [] and len(res.plan.todo) == 30
    assert res.plan.expected_cost == pytest.approx(sum((c.input_tokens * 1.0 + 256 * 2.0) / 1e6 for c in res.plan.todo))
    text = res.plan.text()
    assert "expected spend $" in text and "would stop after about" in text and "code questions left out" in text


def test_rate_limits_are_retried_with_backoff():
    waits = []
    model = ScriptedAnswerer("flaky", 0.5, fail_first=3)
    res = onboard(model, {"name": "flaky", "input_price": 0, "output_price": 0}, n_anchors=4, concurrency=1,
                  retry=RetryPolicy(max_retries=5, base_s=0.5, sleep=waits.append), show_progress=False)
    assert res.report.graded == 4 and res.results[0].retries == 3
    assert len(waits) == 3 and waits[0] <= 0.5 and waits[2] <= 2.0 and waits[2] >= 1.0


def test_a_failing_model_records_nothing_and_the_rerun_retries(tmp_path):
    log = tmp_path / "feedback.log"
    calls = []

    def broken(prompt: str) -> str:
        calls.append(prompt)
        raise ValueError("bad request")  # not transient: no retries

    res = onboard(broken, {"name": "broken", "input_price": 1, "output_price": 1}, n_anchors=3, feedback_log=log, show_progress=False)
    assert len(calls) == 3 and res.report.graded == 0 and len(res.report.failed) == 3
    assert "bad request" in res.report.text()
    good = ScriptedAnswerer("broken", 1.0)
    res2 = onboard(good, {"name": "broken", "input_price": 1, "output_price": 1}, n_anchors=3, feedback_log=log, show_progress=False)
    assert len(good.calls) == 3 and res2.report.graded == 3


def test_a_pack_model_name_is_refused():
    with pytest.raises(OnboardingError, match="already has outcomes"):
        onboard(ScriptedAnswerer("x", 1.0), {"name": "gemma-2-9b-it", "input_price": 1, "output_price": 1}, dry_run=True)


class ScriptedLlamaLLM(CustomLLM):
    """A LlamaIndex LLM over the scripted answers, reporting usage the OpenAI way."""

    script: ScriptedAnswerer

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="llama-standin")

    def chat(self, messages, **kwargs):
        out = self.script(messages[-1].content)
        return ChatResponse(message=ChatMessage(role="assistant", content=out["text"]),
                            raw={"usage": {"prompt_tokens": out["input_tokens"], "completion_tokens": out["output_tokens"] + 1}})

    def complete(self, prompt, formatted=False, **kwargs):  # pragma: no cover - chat is used
        return CompletionResponse(text=self.script(prompt)["text"])

    def stream_complete(self, prompt, formatted=False, **kwargs):  # pragma: no cover
        raise NotImplementedError


def test_every_kind_of_model_input(monkeypatch):
    card = {"name": "any", "input_price": 1, "output_price": 1}
    llm = ScriptedLlamaLLM(script=ScriptedAnswerer("any", 1.0))
    assert as_client(llm).name == "llama-standin"
    res = onboard(llm, card, n_anchors=5, show_progress=False)
    assert res.accuracy == 1.0 and all(not r.counted for r in res.results)
    assert all(r.output_tokens == approx_token_count(r.answer) + 1 for r in res.results)  # the reported usage, not a count

    def plain(prompt: str) -> str:  # no usage: tokens counted locally, and the report says so
        return ScriptedAnswerer("any", 1.0).answer(prompt)

    res = onboard(plain, card, n_anchors=5, show_progress=False)
    assert res.accuracy == 1.0 and all(r.counted for r in res.results) and "counted locally" in res.report.text()

    import langchain.chat_models as chat_models

    made = []
    monkeypatch.setattr(chat_models, "init_chat_model", lambda spec: made.append(spec) or sm.chat("tiny-1b"))
    res = onboard("fakeprovider:tiny-1b", {**card, "name": "tiny-string"}, n_anchors=5, show_progress=False)
    assert made == ["fakeprovider:tiny-1b"] and res.report.graded == 5
    monkeypatch.undo()
    with pytest.raises(OnboardingError, match="cannot create chat model"):
        onboard("openai-nope:gpt-x", card, n_anchors=2, show_progress=False)
    with pytest.raises(OnboardingError, match="provider:model"):
        onboard("gpt-x", card, n_anchors=2, show_progress=False)
    with pytest.raises(OnboardingError, match="cannot call"):
        onboard(42, card, n_anchors=2, show_progress=False)


def test_code_questions_left_out_without_code_grading_and_judged_with_a_judge():
    res = onboard(None, {"name": "nocode", "input_price": 1, "output_price": 1}, dry_run=True)
    assert all(q.metric != "code" for q in res.plan.anchors) and res.plan.left_out_metrics == ["code"]
    judged = []

    def judge(answer, question):
        judged.append(question.id)
        return 1.0

    res = onboard(ScriptedAnswerer("judged", 0.0), {"name": "judged", "input_price": 1, "output_price": 1},
                  graders={"code": judge}, n_anchors=50, show_progress=False)
    code_ids = [r.question_id for r in res.results if r.metric == "code"]
    assert code_ids and sorted(judged) == sorted(code_ids) and res.plan.left_out_metrics == []


def test_onboarding_outcomes_carry_usage_and_source(three):
    history = three[0]
    log = history.outcome_log
    rows = [r for r in log.rows() if r["model"] == "big-70b"]
    assert len(rows) == DEFAULT_ANCHORS
    assert all(r["source"] == ONBOARDING_SOURCE and r["input_tokens"] > 0 and "latency_s" in r for r in rows)
