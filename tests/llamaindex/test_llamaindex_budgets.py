"""Budgets that hold with LlamaIndex: stops the synthesizers do not swallow, holds that price the
retrieved context, stopped streams, nesting, selector and LLM charging once, end mode, the fallback
filter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fixtures_llamaindex import MODELS, collector, named_llms  # noqa: F401  (fixture)
from fixtures_rag import QUERIES, BillingLLM, billing_llms, llamaindex_rag_engine, rag_index
from llama_index.core import Document, SummaryIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.retrievers import RouterRetriever
from llama_index.core.tools import FunctionTool, QueryEngineTool, RetrieverTool, ToolMetadata

from llamaindex_scope import SCOPELLM, SCOPESelector, scope_budget
from scope_shared import AllCandidatesFailed, BudgetExceeded, Ledger
from scope_shared.errors import InvalidSettingError
from scope_shared.calls import prompt_tokens

MATH = "math: what is the integral of x squared?"


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content=text)]


class Down(BillingLLM):
    def chat(self, messages: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise ConnectionError(f"{self.label} unreachable")


class AuthFailing(BillingLLM):
    def chat(self, messages: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise PermissionError("invalid API key")


class Peek(BillingLLM):
    """Records what the ledger holds while it is being called."""

    ledger: Any = None
    held: list[float] = []

    def chat(self, messages: Any, **kwargs: Any) -> Any:
        self.held.append(self.ledger.reserved)
        return super().chat(messages, **kwargs)


# ---------------------------------------------------------------- stops the synthesizers do not swallow
@pytest.mark.parametrize("mode", ["compact", "refine"])
async def test_a_spent_budget_stops_the_query_instead_of_an_empty_response(router, mode):
    llms = billing_llms()
    engine = llamaindex_rag_engine(SCOPELLM(router, llms, ledger=Ledger(0.0)), mode)
    with pytest.raises(BudgetExceeded):
        engine.query(QUERIES[0])
    with pytest.raises(BudgetExceeded):
        await engine.aquery(QUERIES[1])
    assert not any(llm.calls for llm in llms.values())


@pytest.mark.parametrize("mode", ["compact", "refine"])
async def test_every_candidate_down_raises_instead_of_an_empty_response(router, mode):
    llms = {m: Down(label=m) for m in MODELS}
    engine = llamaindex_rag_engine(SCOPELLM(router, llms), mode)
    with pytest.raises(AllCandidatesFailed) as err:
        engine.query(QUERIES[0])
    assert isinstance(err.value.__cause__, ConnectionError) and len(err.value.errors) == 3
    with pytest.raises(AllCandidatesFailed):
        await engine.aquery(QUERIES[1])


def test_max_cost_no_candidate_fits_stops_under_a_capping_budget(router):
    llm = SCOPELLM(router, named_llms(), max_cost=1e-12)
    assert llm.complete(MATH).additional_kwargs["scope"]["over_max_cost"] is True
    with pytest.raises(BudgetExceeded, match="fits no candidate"):
        llm.complete(MATH, ledger=Ledger(1.0))


# ---------------------------------------------------------------- holds price the retrieved context
@pytest.mark.parametrize("asynchronous", [False, True])
async def test_the_hold_prices_the_retrieved_context(router, asynchronous):
    ledger = Ledger(10.0)
    peek = Peek(label="strong", words=20, ledger=ledger, held=[])
    llm = SCOPELLM(router, {**billing_llms(), "strong": peek}, min_accuracy=0.9, ledger=ledger)
    engine = llamaindex_rag_engine(llm, "compact")
    q = "math question 4: what does document 9 say about vector?"
    response = await engine.aquery(q) if asynchronous else engine.query(q)
    (entry,) = ledger.entries
    assert entry.model == "strong" and peek.held == [pytest.approx(entry.expected_cost)]
    assert entry.cost <= entry.expected_cost  # real cost within the hold
    assert peek.prompts[0] > 300 and entry.input_tokens >= peek.prompts[0]  # context, not ~12 tokens
    assert str(response).startswith("[strong]")


# ---------------------------------------------------------------- streams stopped early
def test_a_chat_stream_stopped_after_two_chunks_is_charged_those_tokens(router, collector):
    ledger = Ledger(1.0)
    llm = SCOPELLM(router, billing_llms(), min_accuracy=0.9, ledger=ledger)
    stream = llm.stream_chat(user("trivia: capital of France?"))
    seen = [next(stream).message.content, next(stream).message.content]
    assert seen == ["[cheap]", "[cheap] alpha"] and ledger.reserved > 0
    stream.close()
    assert ledger.reserved == 0 and ledger.calls == 1
    (entry,) = ledger.entries
    # the two chunks handed out, and the third one, held back but already produced (and billed)
    assert entry.output_tokens == router.count_tokens("[cheap] alpha beta") > router.count_tokens(seen[1])
    assert entry.info["partial"] is True and entry.info["stopped"] == "closed by the consumer"
    assert router.calls.get(entry.info["call_id"]).stopped == "closed by the consumer"
    (cost,) = collector.of("SCOPECostEvent")
    assert cost.stopped == "closed by the consumer" and cost.cost == pytest.approx(entry.cost)


async def test_an_async_stream_is_charged_at_once_on_aclose_and_on_cancel(router):
    ledger = Ledger(1.0)
    llm = SCOPELLM(router, billing_llms(), min_accuracy=0.9, ledger=ledger)
    stream = await llm.astream_chat(user("trivia: capital of France?"))
    await stream.__anext__()
    await stream.__anext__()
    await stream.aclose()  # no event-loop turn needed
    assert ledger.reserved == 0 and ledger.entries[0].output_tokens == router.count_tokens("[cheap] alpha beta")

    class Hanging(BillingLLM):
        async def astream_chat(self, messages: Any, **kwargs: Any) -> Any:
            async def gen() -> Any:
                for text in ("[cheap]", "[cheap] half"):
                    yield ChatResponseOf(text)
                await asyncio.sleep(30)  # the client goes away while we wait

            return gen()

    from llama_index.core.base.llms.types import ChatResponse

    def ChatResponseOf(text: str) -> ChatResponse:  # noqa: N802
        return ChatResponse(message=ChatMessage(role="assistant", content=text), delta=text)

    ledger2 = Ledger(1.0)
    hanging = SCOPELLM(router, {**billing_llms(), "cheap": Hanging(label="cheap")}, min_accuracy=0.9, ledger=ledger2)
    seen: list[str] = []

    async def consume() -> None:
        async for chunk in await hanging.astream_chat(user("trivia: capital of France?")):
            seen.append(chunk.message.content)

    task = asyncio.create_task(consume())
    while len(seen) < 1:  # one chunk is held back: the second has been produced
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (entry,) = ledger2.entries
    assert ledger2.reserved == 0 and entry.info["stopped"] == "cancelled"
    assert entry.output_tokens == router.count_tokens("[cheap] half")


async def test_a_streaming_query_engine_stopped_early_settles(router):
    ledger = Ledger(1.0)
    engine = llamaindex_rag_engine(SCOPELLM(router, billing_llms(), ledger=ledger), "compact", streaming=True)
    response = engine.query(QUERIES[2])
    gen = response.response_gen
    next(gen), next(gen)
    gen.close()
    assert ledger.reserved == 0 and ledger.calls == 1 and ledger.entries[0].info["partial"] is True


# ---------------------------------------------------------------- nesting
@pytest.mark.parametrize("asynchronous", [False, True])
async def test_nested_blocks_and_ledger_parents_charge_every_level(router, asynchronous):
    org = Ledger(5.0, name="org")
    team = Ledger(1.0, name="team", parent=org)
    query = Ledger(0.5, name="query")
    engine = llamaindex_rag_engine(SCOPELLM(router, billing_llms()), "refine")
    with scope_budget(ledger=team):
        with scope_budget(ledger=query):
            response = await engine.aquery(QUERIES[3]) if asynchronous else engine.query(QUERIES[3])
    assert str(response)
    assert query.calls == team.calls == org.calls == 3  # refine over three chunks: three LLM calls
    assert query.spent == team.spent == org.spent > 0
    assert [e.info["call_id"] for e in query.entries] == [e.info["call_id"] for e in org.entries]


# ---------------------------------------------------------------- selector and LLM on one budget
def _tier_engines(router: Any) -> list[QueryEngineTool]:
    """One engine per model tier, each answering with a SCOPELLM over that tier's LLM."""
    return [
        QueryEngineTool(
            query_engine=rag_index().as_query_engine(llm=SCOPELLM(router, {m: billing_llms()[m]}), similarity_top_k=3),
            metadata=ToolMetadata(name=m, description=f"answers with the {m} LLM"),
        )
        for m in MODELS
    ]


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_selector_and_llm_on_one_budget_charge_once(router, asynchronous):
    ledger = Ledger(1.0)
    engine = RouterQueryEngine(
        selector=SCOPESelector(router, min_accuracy=0.9), query_engine_tools=_tier_engines(router),
        llm=BillingLLM(label="summary"),
    )
    with scope_budget(ledger=ledger):
        response = await engine.aquery(QUERIES[0]) if asynchronous else engine.query(QUERIES[0])
    chosen = response.metadata["selector_result"].scope["model"]
    assert chosen == "strong"  # a math question
    (entry,) = ledger.entries  # the engine's LLM call only: real cost, no selection estimate
    assert entry.model == chosen and "estimated" not in entry.info and entry.cost <= entry.expected_cost


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_retrieval_only_selection_charges_nothing(router, asynchronous):
    ledger = Ledger(1.0)
    tools = [
        RetrieverTool(retriever=SummaryIndex.from_documents([Document(text=f"{m} doc")]).as_retriever(),
                      metadata=ToolMetadata(name=m, description=f"{m} docs"))
        for m in MODELS
    ]
    retriever = RouterRetriever(selector=SCOPESelector(router, ledger=ledger), retriever_tools=tools, llm=BillingLLM(label="x"))
    nodes = await retriever.aretrieve(MATH) if asynchronous else retriever.retrieve(MATH)
    assert nodes and ledger.calls == 0 and ledger.spent == 0 and ledger.reserved == 0


def test_an_explicit_engine_prompt_estimate_is_needed_to_charge_a_selection(router):
    with pytest.raises(InvalidSettingError, match="engine_prompt_tokens"):
        SCOPESelector(router, charge_ledger=True)
    with pytest.raises(InvalidSettingError):
        SCOPESelector(router, engine_prompt_tokens=-3)


# ---------------------------------------------------------------- end mode
async def test_end_mode_answers_and_a_function_agent_ends_gracefully(router):
    ledger = Ledger(0.0, mode="end", name="agent")
    children = {"cheap": MockFunctionCallingLLM(), "mid": MockFunctionCallingLLM(), "strong": MockFunctionCallingLLM()}
    llm = SCOPELLM(router, children, ledger=ledger)
    assert "budget is spent" in llm.chat(user(MATH)).message.content
    assert "budget is spent" in (await llm.acomplete(MATH)).text
    assert [c.delta for c in llm.stream_chat(user(MATH))][0].startswith("Stopped")
    chunks = [c async for c in await llm.astream_complete(MATH)]
    assert len(chunks) == 1 and chunks[0].additional_kwargs["scope"]["budget_exhausted"] is True

    def add(a: int = 2, b: int = 3) -> int:
        """Add two integers."""
        return a + b

    for streaming in (False, True):
        agent = FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=llm, streaming=streaming)
        result = await agent.run(user_msg=MATH)
        assert "budget is spent" in str(result)
    assert ledger.spent == 0
    with pytest.raises(BudgetExceeded):  # raise mode stops the agent run instead
        await FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=SCOPELLM(router, children, ledger=Ledger(0.0))).run(
            user_msg=MATH
        )


# ---------------------------------------------------------------- which errors move on
@pytest.mark.parametrize("asynchronous", [False, True])
async def test_errors_outside_fallback_on_propagate_at_once(router, asynchronous):
    llms = {**billing_llms(), "strong": AuthFailing(label="strong")}
    llm = SCOPELLM(router, llms, min_accuracy=0.9, fallback_on=(ConnectionError,))
    with pytest.raises(PermissionError):
        await llm.achat(user(MATH)) if asynchronous else llm.chat(user(MATH))
    assert llms["strong"].calls == 1 and llms["mid"].calls == 0
    default = SCOPELLM(router, {**billing_llms(), "strong": AuthFailing(label="strong")}, min_accuracy=0.9)
    assert default.chat(user(MATH)).additional_kwargs["scope"]["model"] == "mid"


def test_prompt_tokens_count_every_message(router):
    messages = user("x " * 500)
    from llamaindex_scope.budget import chat_prompt_tokens

    assert chat_prompt_tokens(messages, [], router.count_tokens) == prompt_tokens(
        ["be brief", "x " * 500], router.count_tokens
    )
