"""SCOPERouter as a LangChain chat model: routing, metadata, streaming, batching, tracing, tools and
structured output, fallback, feedback, bad input."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from conftest import CARDS, toy_embedder, toy_history
from fixtures_langchain import RunLog, ScriptedChat, make_candidates, make_router, no_tools_chat
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel

from langchain_scope import NoCandidatesError, NoToolCapableCandidate, SCOPERouter, query_text
from scope_shared import FunctionEmbedder, Ledger, ModelCard
from scope_shared.errors import InvalidBudgetError, InvalidCardError, InvalidKnobError, InvalidQueryError
from scope_shared.calls import AllCandidatesFailed

CARD = {c.name: c for c in CARDS}


@pytest.fixture
def cands():
    return make_candidates()


@pytest.fixture
def lc_router(cands):
    return SCOPERouter(candidates=cands, router=make_router(), min_accuracy=0.9)


QUESTIONS = {"trivia question number 3": "cheap", "code question number 3": "mid", "math question number 3": "strong"}


@pytest.mark.parametrize("question,expected", QUESTIONS.items())
def test_invoke_routes_to_the_cheapest_model_that_can_answer(lc_router, cands, question, expected):
    out = lc_router.invoke(question)
    assert isinstance(out, AIMessage)
    assert out.content == f"{expected} says the answer is 42"
    assert out.response_metadata["model_name"] == expected
    scope = out.response_metadata["scope"]
    assert scope["model"] == scope["chosen"] == expected
    assert set(scope["estimates"]) == {"cheap", "mid", "strong"}
    assert scope["knob"] == {"min_accuracy": 0.9}
    assert scope["expected_cost"] == pytest.approx(scope["estimates"][expected]["expected_cost"])
    # real cost from the candidate's usage_metadata (12 in, 34 out)
    assert scope["input_tokens"] == 12 and scope["output_tokens"] == 34
    assert scope["tokens_counted_locally"] is False
    assert scope["cost"] == pytest.approx(CARD[expected].cost(12, 34))
    assert scope["failed"] == [] and scope["skipped"] == {}
    # only the chosen candidate was called
    assert [len(cands[n].calls) for n in ("cheap", "mid", "strong")] == [int(n == expected) for n in ("cheap", "mid", "strong")]


async def test_ainvoke_routes_the_same(lc_router):
    for question, expected in QUESTIONS.items():
        out = await lc_router.ainvoke(question)
        assert out.response_metadata["model_name"] == expected
        assert out.response_metadata["scope"]["cost"] == pytest.approx(CARD[expected].cost(12, 34))


def test_tokens_counted_locally_when_the_candidate_reports_no_usage():
    cands = make_candidates(cheap=ScriptedChat(label="cheap", usage=False, provider_model_name="gpt-tiny"))
    router = make_router()
    m = SCOPERouter(candidates=cands, router=router, min_accuracy=0.9)
    q = "trivia question number 7"
    out = m.invoke(q)
    scope = out.response_metadata["scope"]
    assert scope["tokens_counted_locally"] is True
    assert scope["input_tokens"] == router.count_tokens(q)
    assert scope["output_tokens"] == router.count_tokens("cheap says the answer is 42")
    assert scope["cost"] == pytest.approx(CARD["cheap"].cost(scope["input_tokens"], scope["output_tokens"]))
    # the provider's model id stays in model_name (LangChain's convention); the card name is under scope
    assert out.response_metadata["model_name"] == "gpt-tiny"
    assert scope["model"] == "cheap"


def test_stream_yields_the_chosen_candidates_chunks_then_the_record(lc_router, cands):
    chunks = list(lc_router.stream("code question number 1"))
    assert len(chunks) > 2
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.content == "mid says the answer is 42"
    assert merged.response_metadata["model_name"] == "mid"
    assert merged.response_metadata["scope"]["model"] == "mid"
    assert merged.response_metadata["scope"]["cost"] == pytest.approx(CARD["mid"].cost(12, 34))
    assert len(cands["mid"].calls) == 1 and not cands["strong"].calls


async def test_astream_yields_the_chosen_candidates_chunks_then_the_record(lc_router):
    chunks = [c async for c in lc_router.astream("math question number 1")]
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.content == "strong says the answer is 42"
    assert merged.response_metadata["scope"]["model"] == "strong"


def _counting_embedder():
    base = toy_embedder()
    batches: list[list[str]] = []

    def fn(texts):
        batches.append(list(texts))
        return np.stack([base.embed_one(t) for t in texts])

    return FunctionEmbedder(fn, base.dim, name="toy"), batches


def test_batch_embeds_all_queries_in_one_pass(cands):
    emb, batches = _counting_embedder()
    m = SCOPERouter(candidates=cands, router=make_router(emb), min_accuracy=0.9)
    batches.clear()
    outs = m.batch(["math q one", "code q two", "trivia q three"])
    assert [o.response_metadata["model_name"] for o in outs] == ["strong", "mid", "cheap"]
    assert batches == [["math q one", "code q two", "trivia q three"]]


async def test_abatch_embeds_all_queries_in_one_pass(cands):
    emb, batches = _counting_embedder()
    m = SCOPERouter(candidates=cands, router=make_router(emb), min_accuracy=0.9)
    batches.clear()
    outs = await m.abatch(["math q one", "code q two", "trivia q three"])
    assert [o.response_metadata["model_name"] for o in outs] == ["strong", "mid", "cheap"]
    assert len(batches) == 1 and len(batches[0]) == 3


def test_lcel_chain_prompt_router_parser(lc_router):
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")])
    chain = prompt | lc_router | StrOutputParser()
    assert chain.invoke({"q": "a math question"}) == "strong says the answer is 42"
    assert chain.invoke({"q": "a trivia question"}) == "cheap says the answer is 42"


def _check_trace(log: RunLog, out: AIMessage) -> None:
    (routing,) = log.routing_runs()
    assert routing["name"] == "SCOPERouter"
    md = routing["metadata"]
    assert md["scope_model"] == out.response_metadata["model_name"]
    assert md["scope_knob"] == {"min_accuracy": 0.9}
    assert md["scope_ranking"][0] == md["scope_model"]
    assert "expected" in md["scope_explanation"]
    assert str(routing["run_id"]) == out.response_metadata["scope"]["call_id"]
    # the router's run is a chat-model run with its own ls_* params
    assert md["ls_provider"] == "scope" and md["ls_model_name"] == "scope-router" and md["ls_model_type"] == "chat"
    # the chosen candidate's chat-model run nests under the router's run, tagged so that LangGraph's
    # messages stream does not emit its chunks beside the router's
    (chat,) = log.candidate_runs()
    assert chat["parent"] == routing["run_id"]
    assert "nostream" in chat["tags"] and "nostream" not in routing["tags"]
    assert chat["metadata"].get("ls_model_name") != "scope-router"


def test_tracing_nests_the_candidate_run_under_a_routing_run(lc_router):
    log = RunLog()
    out = lc_router.invoke("code question 5", config={"callbacks": [log]})
    _check_trace(log, out)


async def test_tracing_async(lc_router):
    log = RunLog()
    out = await lc_router.ainvoke("code question 5", config={"callbacks": [log]})
    _check_trace(log, out)


def test_tracing_in_a_chain_parents_the_routing_run_under_the_chain(lc_router):
    log = RunLog()
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | lc_router
    chain.invoke({"q": "trivia"}, config={"callbacks": [log]})
    (routing,) = log.routing_runs()
    sequence = next(c for c in log.chains if c["parent"] is None)
    assert routing["parent"] == sequence["run_id"]


def test_model_override_forces_a_candidate_and_shows_in_ls_params(lc_router):
    out = lc_router.invoke("trivia question", model="strong")
    assert out.response_metadata["model_name"] == "strong"
    assert lc_router._get_ls_params(model="strong")["ls_model_name"] == "strong"
    assert lc_router._get_ls_params()["ls_model_name"] == "scope-router"


def test_legacy_generate_path_routes_too(lc_router):
    res = lc_router.generate([[HumanMessage("math question 9")]])
    assert res.generations[0][0].message.response_metadata["model_name"] == "strong"


def test_with_retry_and_with_fallbacks(cands):
    flaky = {n: ScriptedChat(label=n, fail=1) for n in ("cheap", "mid", "strong")}
    m = SCOPERouter(candidates=flaky, router=make_router(), min_accuracy=0.9)
    # first call: every candidate fails once -> AllCandidatesFailed; with_retry tries again
    out = m.with_retry(stop_after_attempt=2, wait_exponential_jitter=False).invoke("trivia question")
    assert out.response_metadata["model_name"] == "cheap"
    dead = SCOPERouter(
        candidates={n: ScriptedChat(label=n, fail=-1) for n in ("cheap", "mid", "strong")},
        router=make_router(),
    )
    backup = ScriptedChat(label="backup")
    out = dead.with_fallbacks([backup]).invoke("trivia question")
    assert out.content == "backup says the answer is 42"


# ---------------------------------------------------------------- query-text rule (more in test_langchain_routing_text.py)
def test_query_text_single_turn_is_exactly_the_text():
    assert query_text([HumanMessage("What is 2+2?")]) == "What is 2+2?"


def test_query_text_is_the_question_of_an_agent_step_with_its_latest_tool_result():
    msgs = [
        SystemMessage("You are terse."),
        HumanMessage("first question " + "x" * 50),
        AIMessage("first answer"),
        HumanMessage("and the second one?"),
        AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": 1}, "id": "c1"}]),
        ToolMessage("looked up: 7", tool_call_id="c1"),
    ]
    assert query_text(msgs) == "and the second one?\n\nlooked up: 7"
    # earlier turns only on request, never the system prompt
    assert query_text(msgs, context_chars=1000).split("\n")[:3] == [
        "user: first question " + "x" * 50, "assistant: first answer", "and the second one?"
    ]
    assert query_text(msgs, context_chars=24).split("\n")[0] == "assistant: first answer"


def test_query_text_routes_on_the_last_human_turn():
    msgs = [HumanMessage("a math question"), AIMessage("ok"), HumanMessage("now a trivia question")]
    assert query_text(msgs) == "now a trivia question"


def test_run_id_is_the_call_id(lc_router):
    rid = uuid.uuid4()
    out = lc_router.invoke("trivia", config={"run_id": rid})
    assert out.response_metadata["scope"]["call_id"] == str(rid)


@pytest.mark.parametrize("streamed", [False, True])
async def test_astream_events_show_the_router_as_a_chat_model_with_the_candidate_nested(lc_router, streamed):
    if streamed:
        events = [e async for e in lc_router.astream_events("code question 2", version="v2")]
    else:  # an ainvoke inside a listened run streams too, as a native chat model does
        events = [e async for e in RunnableLambda(lc_router.ainvoke).astream_events("code question 2", version="v2")]
        events = [e for e in events if e["name"] in ("SCOPERouter", "ScriptedChat")]
    names = [(e["event"], e["name"]) for e in events]
    assert names[0] == ("on_chat_model_start", "SCOPERouter")
    assert names[-1] == ("on_chat_model_end", "SCOPERouter")
    router_id = events[0]["run_id"]
    assert events[0]["metadata"]["scope_model"] == "mid" and events[0]["metadata"]["ls_provider"] == "scope"
    (candidate_start,) = [e for e in events if e["event"] == "on_chat_model_start" and e["name"] == "ScriptedChat"]
    assert candidate_start["parent_ids"][-1] == router_id
    own = [e["data"]["chunk"] for e in events if e["event"] == "on_chat_model_stream" and e["run_id"] == router_id]
    theirs = [e["data"]["chunk"] for e in events if e["event"] == "on_chat_model_stream" and e["run_id"] != router_id]
    assert "".join(c.content for c in own) == "".join(c.content for c in theirs) == "mid says the answer is 42"
    # the router's last chunk carries the record; the router's run ends with the whole reply
    assert own[-1].chunk_position == "last" and own[-1].response_metadata["scope"]["model"] == "mid"
    assert all("scope" not in c.response_metadata for c in own[:-1])
    assert len({c.id for c in own}) == 1
    output = events[-1]["data"]["output"]
    assert output.content == "mid says the answer is 42" and output.response_metadata["scope"]["model"] == "mid"


class _BreaksMidStream(ScriptedChat):
    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        it = super()._stream(messages, stop, run_manager, **kwargs)
        yield next(it)
        raise RuntimeError("connection reset")


def test_no_silent_switch_after_a_stream_has_started():
    from scope_shared import Ledger

    cands = make_candidates(strong=_BreaksMidStream(label="strong"))
    m = SCOPERouter(candidates=cands, router=make_router(), alpha=1.0)
    ledger = Ledger(1.0)
    got = []
    with pytest.raises(RuntimeError, match="connection reset"):
        for c in m.stream("math question", config={"configurable": {"scope_ledger": ledger}}):
            got.append(c)
    assert len(got) == 1 and not cands["mid"].calls
    assert ledger.reserved == 0


def test_stopping_a_stream_early_releases_the_budget_hold(lc_router):
    from scope_shared import Ledger

    ledger = Ledger(1.0)
    it = lc_router.stream("math question", config={"configurable": {"scope_ledger": ledger}})
    next(it)
    assert ledger.reserved > 0
    it.close()
    assert ledger.reserved == 0


# ---------------------------------------------------------------- tools and structure
def test_bind_tools_applies_to_the_chosen_candidate_and_skips_tool_less_ones():
    cands = make_candidates(cheap=no_tools_chat("cheap"))
    m = SCOPERouter(candidates=cands, router=make_router(), min_accuracy=0.9)

    def lookup(q: int) -> int:
        """Look something up."""
        return q

    bound = m.bind_tools([lookup])
    out = bound.invoke("trivia question 4")  # cheap would win, but it cannot bind tools
    scope = out.response_metadata["scope"]
    assert scope["skipped"] == {"cheap": "cannot bind tools"}
    assert "cheap" not in scope["estimates"]
    assert out.response_metadata["model_name"] == "mid"
    assert out.tool_calls[0]["name"] == "lookup"
    assert cands["mid"].calls[0]["kwargs"]["tools"][0]["function"]["name"] == "lookup"


async def test_bind_tools_async():
    m = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)

    def lookup(q: int) -> int:
        """Look something up."""
        return q

    out = await m.bind_tools([lookup], tool_choice="any").ainvoke("math question")
    assert out.response_metadata["model_name"] == "strong" and out.tool_calls


def test_bind_tools_fails_clearly_when_no_candidate_can():
    cands = {n: no_tools_chat(n) for n in ("cheap", "mid", "strong")}
    m = SCOPERouter(candidates=cands, router=make_router())
    with pytest.raises(NoToolCapableCandidate):
        m.bind_tools([lambda x: x])


class Answer(BaseModel):
    q: int


def test_with_structured_output_goes_through_the_chosen_candidate():
    cands = make_candidates()
    m = SCOPERouter(candidates=cands, router=make_router(), min_accuracy=0.9)
    result = m.with_structured_output(Answer).invoke("code question")
    assert result == Answer(q=1)
    assert cands["mid"].calls[0]["kwargs"]["tool_choice"] == "any"
    raw = m.with_structured_output(Answer, include_raw=True).invoke("math question")
    assert raw["parsed"] == Answer(q=1)
    assert raw["raw"].response_metadata["model_name"] == "strong"


# ---------------------------------------------------------------- fallback
def test_a_failing_candidate_falls_back_to_the_next_ranked(cands):
    cands["strong"] = ScriptedChat(label="strong", fail=-1)
    ledger = Ledger(1.0)
    m = SCOPERouter(candidates=cands, router=make_router(), alpha=1.0)
    out = m.invoke("math question", config={"configurable": {"scope_ledger": ledger}})
    scope = out.response_metadata["scope"]
    assert scope["chosen"] == "strong" and scope["model"] == out.response_metadata["model_name"] != "strong"
    assert scope["failed"] == [{"model": "strong", "error": "RuntimeError: strong is down"}]
    assert [e.model for e in ledger.entries] == [scope["model"]]  # only the answer is charged
    assert ledger.reserved == 0


async def test_fallback_async_and_streaming(cands):
    cands["strong"] = ScriptedChat(label="strong", fail=-1)
    m = SCOPERouter(candidates=cands, router=make_router(), alpha=1.0)
    out = await m.ainvoke("math question")
    assert out.response_metadata["scope"]["failed"][0]["model"] == "strong"
    chunks = list(m.stream("math question"))
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.response_metadata["scope"]["failed"][0]["model"] == "strong"
    assert merged.response_metadata["model_name"] != "strong"


def test_all_candidates_failing_raises_and_releases_the_budget():
    ledger = Ledger(1.0)
    dead = {n: ScriptedChat(label=n, fail=-1) for n in ("cheap", "mid", "strong")}
    m = SCOPERouter(candidates=dead, router=make_router())
    with pytest.raises(AllCandidatesFailed, match="cheap is down"):
        m.invoke("trivia", config={"configurable": {"scope_ledger": ledger}})
    assert ledger.reserved == 0 and ledger.spent == 0


# ---------------------------------------------------------------- feedback
def test_feedback_by_run_id_or_message_reaches_the_history(lc_router):
    history = lc_router.router.history
    before = len(history.records)
    rid = uuid.uuid4()
    out = lc_router.invoke("a brand new trivia question", config={"run_id": rid, "configurable": {"min_accuracy": 0.9}})
    qid = lc_router.record_feedback(rid, correct=0.0)
    assert history.text(qid) == "a brand new trivia question"
    (new,) = history.records[before:]
    assert new.question_id == qid
    assert new.outcome.model == "cheap" and new.outcome.correct == 0.0
    assert new.outcome.output_tokens == 34 and new.outcome.input_tokens == 12  # the real usage
    # the core router accepts the same id (as a string); the reply itself works too
    assert lc_router.router.record_feedback(str(rid), correct=1.0) == qid
    assert lc_router.record_feedback(out, correct=0.5) == qid
    # feedback on the same call replaces the earlier one: one outcome, the last score
    (new,) = history.records[before:]
    assert new.outcome.correct == 0.5


def test_feedback_changes_later_estimates():
    router = make_router()
    m = SCOPERouter(candidates=make_candidates(), router=router, min_accuracy=0.9)
    q = "zebra puzzle"  # no topic: the toy embedder puts it off every topic
    p_before = router.estimate(q)["cheap"].p_correct
    for _ in range(5):
        out = m.invoke(q, model="cheap")
        m.record_feedback(out, correct=0.0)
    assert router.estimate(q)["cheap"].p_correct < p_before


# ---------------------------------------------------------------- bad input
def test_bad_construction_raises_scope_errors():
    router = make_router()
    with pytest.raises(NoCandidatesError):
        SCOPERouter(candidates={}, router=router)
    extra = make_candidates(other=ScriptedChat(label="other"))
    with pytest.raises(InvalidCardError, match="'other' have no model card"):
        SCOPERouter(candidates=extra, router=router)
    missing = make_candidates()
    missing.pop("strong")
    with pytest.raises(InvalidCardError, match="'strong' have no candidate"):
        SCOPERouter(candidates=missing, router=router)
    with pytest.raises(InvalidKnobError):
        SCOPERouter(candidates=make_candidates(), router=router, alpha=0.5, max_cost=1.0)
    with pytest.raises(InvalidKnobError):
        SCOPERouter(candidates=make_candidates(), router=router, min_accuracy=2.0)


def test_from_cards_and_history():
    m = SCOPERouter(candidates=make_candidates(), cards=CARDS, history=toy_history(), embedder=make_router().embedder)
    assert m.invoke("math question", config={"configurable": {"min_accuracy": 0.9}}).response_metadata["model_name"] == "strong"
    m2 = SCOPERouter.from_defaults(make_candidates(), CARDS, toy_history(), embedder=make_router().embedder)
    assert m2.router.models == ["cheap", "mid", "strong"]


def test_bad_calls_raise_before_any_candidate_is_called(lc_router, cands):
    with pytest.raises(InvalidQueryError):
        lc_router.invoke([HumanMessage(content="")])
    with pytest.raises(InvalidQueryError):
        lc_router.invoke("   ")
    with pytest.raises(InvalidKnobError):
        lc_router.invoke("q", config={"configurable": {"max_cost": -1}})
    with pytest.raises(InvalidBudgetError):
        lc_router.invoke("q", config={"configurable": {"scope_ledger": 5.0}})
    with pytest.raises(KeyError):
        lc_router.invoke("q", model="gpt-unknown")
    assert not any(c.calls for c in cands.values())


def test_added_model_needs_a_candidate():
    router = make_router()
    router.add_model(ModelCard(name="new", input_price=0.5, output_price=0.5), {"math question number 1": 1.0})
    with pytest.raises(InvalidCardError, match="'new'"):
        SCOPERouter(candidates=make_candidates(), router=router)
    m = SCOPERouter(candidates=make_candidates(new=ScriptedChat(label="new")), router=router)
    assert "new" in m.invoke("math question").response_metadata["scope"]["estimates"]
