"""SCOPELLM: routes chat/complete (sync, async, streaming, with tools) to candidate LlamaIndex LLMs."""

from __future__ import annotations

import asyncio

import pytest
from fixtures_llamaindex import MODELS, NamedLLM, collector, named_llms  # noqa: F401  (fixture)
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, ToolCallBlock
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

from llamaindex_scope import SCOPELLM, scope_budget
from scope_shared import BudgetExceeded, Ledger, ScopeError
from scope_shared.errors import (
    InvalidCardError,
    InvalidComponentError,
    InvalidQueryError,
    NoCandidatesError,
    NoToolCapableCandidate,
)
from scope_shared.calls import AllCandidatesFailed

RIGHT = {"math": "strong", "code": "mid", "trivia": "cheap"}
QUESTIONS = {
    "math": "math: what is the integral of x squared?",
    "code": "code: how do I reverse a list in python?",
    "trivia": "trivia: what is the capital of France?",
}


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content=text)]


def scope_of(response) -> dict:
    return response.additional_kwargs["scope"]


def test_is_a_function_calling_llm(router):
    llm = SCOPELLM(router, named_llms())
    assert isinstance(llm, FunctionCallingLLM)
    assert llm.metadata.is_function_calling_model is False  # no child calls functions
    assert SCOPELLM(router, {"strong": MockFunctionCallingLLM()}).metadata.is_function_calling_model


@pytest.mark.parametrize("topic", list(RIGHT))
def test_complete_and_chat_go_to_the_routed_child(router, topic):
    llms = named_llms()
    llm = SCOPELLM(router, llms, min_accuracy=0.9)
    response = llm.complete(QUESTIONS[topic])
    assert response.text.startswith(f"[{RIGHT[topic]}]") and scope_of(response)["model"] == RIGHT[topic]
    chat = llm.chat(user(QUESTIONS[topic]))
    assert chat.message.content.startswith(f"[{RIGHT[topic]}]") and scope_of(chat)["model"] == RIGHT[topic]
    assert chat.raw["scope"]["call_id"] == scope_of(chat)["call_id"]
    assert sum(c.calls for c in llms.values()) == 2


def test_counted_cost_when_the_child_reports_no_usage(router):
    llm = SCOPELLM(router, {m: MockLLM() for m in MODELS}, min_accuracy=0.9)
    prompt = QUESTIONS["math"]
    response = llm.complete(prompt)  # MockLLM echoes the prompt
    s = scope_of(response)
    n = router.count_tokens(prompt)
    assert s["tokens_counted_locally"] is True and s["input_tokens"] == n and s["output_tokens"] == n
    assert s["cost"] == pytest.approx(router.cards["strong"].cost(n, n))


def test_reported_usage_is_the_real_cost(router):
    llm = SCOPELLM(router, named_llms(strong={"usage": (1000, 500)}), min_accuracy=0.9)
    s = scope_of(llm.complete(QUESTIONS["math"]))
    assert s["tokens_counted_locally"] is False and (s["input_tokens"], s["output_tokens"]) == (1000, 500)
    assert s["cost"] == pytest.approx(router.cards["strong"].cost(1000, 500))


def test_a_failing_child_falls_back_to_the_next_in_the_ranking(router):
    ledger = Ledger(budget=1.0)
    llms = named_llms(strong={"fail": True})
    llm = SCOPELLM(router, llms, min_accuracy=0.9, ledger=ledger)
    response = llm.complete(QUESTIONS["math"])
    s = scope_of(response)
    assert s["chosen"] == "strong" and s["model"] == s["ranking"][1] != "strong"
    assert s["failed"] == [{"model": "strong", "error": "RuntimeError: strong is down"}]
    assert response.text.startswith(f"[{s['model']}]") and llms["strong"].calls == 1
    assert ledger.calls == 1 and ledger.reserved == 0 and ledger.entries[0].model == s["model"]


def test_every_child_failing_raises(router):
    ledger = Ledger(budget=1.0)
    llm = SCOPELLM(router, named_llms(**{m: {"fail": True} for m in MODELS}), ledger=ledger)
    with pytest.raises(AllCandidatesFailed, match="is down"):
        llm.complete(QUESTIONS["trivia"])
    assert ledger.reserved == 0 and ledger.calls == 0


# ---------------------------------------------------------------- streaming
def test_stream_complete_and_chat(router):
    ledger = Ledger(budget=1.0)
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9, ledger=ledger)
    chunks = list(llm.stream_complete(QUESTIONS["code"]))
    assert "".join(c.delta for c in chunks) == "[mid] word word word word word"
    assert all(c.additional_kwargs["scope"]["call_id"] == scope_of(chunks[-1])["call_id"] for c in chunks)
    assert scope_of(chunks[-1])["cost"] > 0 and ledger.calls == 1
    chat_chunks = list(llm.stream_chat(user(QUESTIONS["math"])))
    assert chat_chunks[-1].message.content.startswith("[strong]") and scope_of(chat_chunks[-1])["cost"] > 0
    assert ledger.calls == 2 and ledger.reserved == 0


def test_a_stream_stopped_early_is_still_settled(router):
    ledger = Ledger(budget=1.0)
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9, ledger=ledger)
    gen = llm.stream_complete(QUESTIONS["math"])
    first = next(gen)
    gen.close()
    assert first.text == "[strong]"
    assert ledger.calls == 1 and ledger.reserved == 0
    # charged what was produced: the chunk handed out and the one held back behind it
    assert ledger.entries[0].output_tokens == router.count_tokens("[strong] word")


def test_a_stream_that_fails_before_its_first_chunk_falls_back(router):
    llm = SCOPELLM(router, named_llms(strong={"fail": True}), min_accuracy=0.9)
    chunks = list(llm.stream_complete(QUESTIONS["math"]))
    s = scope_of(chunks[-1])
    assert s["chosen"] == "strong" and s["model"] != "strong" and s["failed"][0]["model"] == "strong"


# ---------------------------------------------------------------- async
async def test_async_forms(router):
    ledger = Ledger(budget=1.0)
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9, ledger=ledger)
    r = await llm.acomplete(QUESTIONS["trivia"])
    assert r.text.startswith("[cheap]")
    c = await llm.achat(user(QUESTIONS["code"]))
    assert c.message.content.startswith("[mid]")
    chunks = [x async for x in await llm.astream_complete(QUESTIONS["math"])]
    assert chunks[-1].text.startswith("[strong]") and scope_of(chunks[-1])["cost"] > 0
    chat_chunks = [x async for x in await llm.astream_chat(user(QUESTIONS["code"]))]
    assert chat_chunks[-1].message.content.startswith("[mid]")
    assert ledger.calls == 4 and ledger.reserved == 0


async def test_concurrent_tasks_keep_their_own_budget_blocks(router):
    llm = SCOPELLM(router, named_llms())
    a, b = Ledger(budget=1.0, name="a"), Ledger(budget=1.0, name="b")

    async def run(ledger: Ledger, **knob: float) -> str:
        with scope_budget(ledger=ledger, **knob):
            await asyncio.sleep(0)
            return scope_of(await llm.acomplete(QUESTIONS["math"]))["model"]

    models = await asyncio.gather(run(a, tradeoff=1e9), run(b, min_accuracy=0.9))
    assert models == ["cheap", "strong"]
    assert [e.model for e in a.entries] == ["cheap"] and [e.model for e in b.entries] == ["strong"]


# ---------------------------------------------------------------- budget per pipeline
def test_knob_and_ledger_precedence_call_then_block_then_constructor(router):
    built, block, per_call = Ledger(1.0, name="built"), Ledger(1.0, name="block"), Ledger(1.0, name="call")
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9, ledger=built)
    q = QUESTIONS["math"]
    assert scope_of(llm.complete(q))["model"] == "strong"
    with scope_budget(ledger=block, tradeoff=1e9):
        assert scope_of(llm.complete(q))["model"] == "cheap"
        s = scope_of(llm.complete(q, min_accuracy=0.9, ledger=per_call))
        assert s["model"] == "strong" and s["ledger"] == "call"
        with scope_budget(min_accuracy=0.9):  # inner block: new knob, inherits the ledger
            s = scope_of(llm.complete(q))
            assert s["model"] == "strong" and s["ledger"] == "block"
    assert [e.model for e in built.entries] == ["strong"]
    # the per-call ledger nests inside the block's: that call is charged to both
    assert [e.model for e in block.entries] == ["cheap", "strong", "strong"]
    assert [e.model for e in per_call.entries] == ["strong"]


def test_budget_caps_then_falls_back_to_cheapest_then_raises(router):
    q = QUESTIONS["math"]
    probe = SCOPELLM(router, named_llms(), min_accuracy=0.9)
    strong_cost = scope_of(probe.complete(q))["expected_cost"]
    ledger = Ledger(budget=strong_cost / 2)
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9, ledger=ledger)
    assert scope_of(llm.complete(q))["model"] != "strong"  # does not fit: the best that fits
    empty = Ledger(budget=0.0, mode="soft")
    s = scope_of(llm.complete(q, ledger=empty))
    assert s["model"] == "cheap" and s["fallback_to_cheapest"] is True
    with pytest.raises(BudgetExceeded):
        llm.complete(q, ledger=Ledger(budget=0.0, mode="raise"))


# ---------------------------------------------------------------- instrumentation and feedback
def test_instrumentation_events(router, collector):
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9)
    response = llm.chat(user(QUESTIONS["code"]))
    (routed,) = collector.of("SCOPERoutingEvent")
    (cost,) = collector.of("SCOPECostEvent")
    s = scope_of(response)
    assert routed.call_id == cost.call_id == s["call_id"]
    assert routed.source == "llm" and routed.model == "mid" and routed.query == QUESTIONS["code"]
    assert cost.cost == pytest.approx(s["cost"]) and cost.tokens_counted_locally
    # the events sit in SCOPELLM's span; the only LLM events are the child's (test_llamaindex_tracing.py)
    assert routed.span_id is not None and routed.span_id.startswith("SCOPELLM.chat")
    assert not [e for e in collector.of("LLMChatStartEvent") if e.model_dict.get("class_name") == "SCOPELLM"]
    assert routed.model_dump()["class_name"] == "SCOPERoutingEvent"


def test_streamed_call_emits_cost_at_the_end(router, collector):
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9)
    gen = llm.stream_complete(QUESTIONS["trivia"])
    assert len(collector.of("SCOPERoutingEvent")) == 1 and not collector.of("SCOPECostEvent")
    list(gen)
    assert len(collector.of("SCOPECostEvent")) == 1


def test_feedback_by_call_id(router):
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9)
    call_id = scope_of(llm.complete(QUESTIONS["code"]))["call_id"]
    before = len(router.history)
    router.record_feedback(call_id, correct=0.0)
    assert len(router.history) == before + 1


# ---------------------------------------------------------------- LlamaIndex pipelines
def test_usable_as_settings_llm_in_a_query_engine(router):
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9)
    saved = Settings._llm
    try:
        Settings.llm = llm
        index = VectorStoreIndex.from_documents(
            [Document(text="Paris is the capital of France.")], embed_model=MockEmbedding(embed_dim=8)
        )
        response = index.as_query_engine().query(QUESTIONS["math"])
    finally:
        Settings._llm = saved
    # the QA prompt wraps the question in retrieved context: SCOPELLM routes on the question inside
    assert str(response).startswith("[strong]")


def adder_agent(llm: SCOPELLM) -> tuple[FunctionAgent, list[int]]:
    seen: list[int] = []

    def add(a: int = 2, b: int = 3) -> int:
        """Add two integers."""
        seen.append(a + b)
        return a + b

    return FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=llm, streaming=False), seen


async def test_function_agent_uses_the_routed_function_calling_child(router, collector):
    children = {"cheap": MockLLM(), "mid": MockFunctionCallingLLM(), "strong": MockFunctionCallingLLM()}
    llm = SCOPELLM(router, children, min_accuracy=0.9)
    agent, seen = adder_agent(llm)
    result = await agent.run(user_msg=QUESTIONS["math"])
    assert seen == [5] and "Tool calls complete" in str(result)
    routed = collector.of("SCOPERoutingEvent")
    assert len(routed) == 2 and {e.model for e in routed} == {"strong"}
    # trivia would go to "cheap", but with tools only function-calling children compete
    agent, seen = adder_agent(llm)
    await agent.run(user_msg=QUESTIONS["trivia"])
    assert seen == [5] and collector.of("SCOPERoutingEvent")[-1].model == "mid"


async def test_streaming_function_agent(router):
    children = {"mid": MockFunctionCallingLLM(), "strong": MockFunctionCallingLLM()}
    llm = SCOPELLM(router, children, min_accuracy=0.9)
    agent, seen = adder_agent(llm)
    agent.streaming = True
    result = await agent.run(user_msg=QUESTIONS["code"])
    assert seen == [5] and "Tool calls complete" in str(result)


def test_tool_calls_are_read_by_the_child_that_answered(router):
    llm = SCOPELLM(router, {"mid": MockFunctionCallingLLM(), "strong": MockFunctionCallingLLM()}, min_accuracy=0.9)
    tool = FunctionTool.from_defaults(lambda a=1: a, name="ident", description="identity")
    response = llm.chat_with_tools([tool], user_msg=QUESTIONS["code"])
    assert scope_of(response)["model"] == "mid"
    assert any(isinstance(b, ToolCallBlock) for b in response.message.blocks)
    calls = llm.get_tool_calls_from_response(response)
    assert [c.tool_name for c in calls] == ["ident"]


# ---------------------------------------------------------------- bad input
def test_bad_input_raises_scope_errors(router):
    with pytest.raises(NoCandidatesError, match="at least one"):  # the class langchain_scope raises too
        SCOPELLM(router, {})
    with pytest.raises(InvalidCardError, match="'gpt-9' has no model card"):
        SCOPELLM(router, {"gpt-9": MockLLM()})
    with pytest.raises(InvalidComponentError, match="not a LlamaIndex LLM"):
        SCOPELLM(router, {"cheap": object()})  # type: ignore[dict-item]
    llm = SCOPELLM(router, named_llms())
    with pytest.raises(InvalidQueryError):
        llm.complete("  ")
    with pytest.raises(InvalidQueryError):
        llm.chat([])
    with pytest.raises(ScopeError, match="set one knob"):
        llm.complete("trivia: x", max_cost=1.0, alpha=0.5)
    with pytest.raises(NoToolCapableCandidate, match="no candidate LLM is a function-calling"):
        llm.chat_with_tools([FunctionTool.from_defaults(lambda: 1, name="one")], user_msg="trivia: x")


async def test_async_events_carry_scopellms_span(router, collector):
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9)
    await llm.achat(user(QUESTIONS["trivia"]))
    (routed,) = collector.of("SCOPERoutingEvent")
    assert routed.model == "cheap" and routed.span_id is not None and routed.span_id.startswith("SCOPELLM.achat")


async def test_an_async_stream_stopped_early_is_still_settled(router):
    ledger = Ledger(budget=1.0)
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9, ledger=ledger)
    agen = await llm.astream_chat(user(QUESTIONS["code"]))
    first = await agen.__anext__()
    assert ledger.reserved > 0
    await agen.aclose()  # released right here, not when the event loop finalises the inner stream
    assert first.message.content == "[mid]" and first.additional_kwargs["scope"]["model"] == "mid"
    assert ledger.calls == 1 and ledger.reserved == 0 and ledger.entries[0].model == "mid"
    assert ledger.entries[0].info["partial"] is True


def test_a_stream_failing_midway_is_charged_what_it_produced_and_raises(router):
    class Broken(NamedLLM):
        def stream_complete(self, prompt, formatted=False, **kwargs):
            def gen():
                yield CompletionResponse(text="[strong] half", delta="[strong] half")
                raise RuntimeError("connection lost")

            return gen()

    ledger = Ledger(budget=1.0)
    llm = SCOPELLM(router, {**named_llms(), "strong": Broken(name="strong")}, min_accuracy=0.9, ledger=ledger)
    with pytest.raises(RuntimeError, match="connection lost"):
        list(llm.stream_complete(QUESTIONS["math"]))
    # the provider billed the half answer: it is charged (counted locally), flagged, and recorded
    assert ledger.reserved == 0 and ledger.calls == 1
    (entry,) = ledger.entries
    assert entry.output_tokens == router.count_tokens("[strong] half") and entry.info["partial"] is True
    assert "connection lost" in entry.info["stopped"]
    assert router.calls.get(entry.info["call_id"]).stopped.startswith("failed: RuntimeError")


def test_routing_text_is_the_query_inside_llamaindex_prompts():
    from llama_index.core.prompts.default_prompts import DEFAULT_REFINE_PROMPT, DEFAULT_TEXT_QA_PROMPT

    from llamaindex_scope import query_text

    q = "math: why is the sky blue?\nAnswer briefly."
    qa = DEFAULT_TEXT_QA_PROMPT.format(context_str="code: lots of retrieved context\nmore", query_str=q)
    assert query_text(qa) == q
    refine = DEFAULT_REFINE_PROMPT.format(query_str=q.splitlines()[0], existing_answer="x", context_msg="code: y")
    assert query_text(refine) == q.splitlines()[0]
    assert query_text("trivia: plain prompt") == "trivia: plain prompt"


def test_custom_routing_text(router):
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9, routing_text=lambda text: "math: " + text)
    assert scope_of(llm.complete("trivia: capital of France?"))["model"] == "strong"
