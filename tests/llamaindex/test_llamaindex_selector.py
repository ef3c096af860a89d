"""SCOPESelector: picks the choice whose model SCOPE routes to, inside RouterQueryEngine and RouterRetriever."""

from __future__ import annotations

import pytest
from fixtures_llamaindex import MODELS, NamedLLM, collector  # noqa: F401  (fixture)
from llama_index.core import Document, SummaryIndex, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.retrievers import RouterRetriever
from llama_index.core.schema import QueryBundle
from llama_index.core.tools import QueryEngineTool, RetrieverTool, ToolMetadata

from llamaindex_scope import SCOPESelection, SCOPESelector, scope_budget
from scope_shared import BudgetExceeded, Ledger, ScopeError
from scope_shared.errors import InvalidCardError, InvalidQueryError, UnknownModelError

# topic -> the tier that is right for it under min_accuracy (toy history: cheap knows trivia,
# mid knows trivia and code, strong knows everything)
RIGHT = {"math": "strong", "code": "mid", "trivia": "cheap"}
QUESTIONS = {
    "math": "math: what is the integral of x squared?",
    "code": "code: how do I reverse a list in python?",
    "trivia": "trivia: what is the capital of France?",
}


def choices() -> list[ToolMetadata]:
    return [ToolMetadata(name=m, description=f"answers with the {m} LLM") for m in MODELS]


@pytest.mark.parametrize("topic", list(RIGHT))
def test_selects_the_cheapest_model_that_reaches_the_target(router, topic):
    sel = SCOPESelector(router, min_accuracy=0.9)
    result = sel.select(choices(), QUESTIONS[topic])
    assert isinstance(result, SCOPESelection)
    assert MODELS[result.ind] == RIGHT[topic]
    assert RIGHT[topic] in result.reason and "0.9" in result.reason
    assert result.scope["model"] == RIGHT[topic]
    assert result.call_id in result.reason


def test_most_accurate_and_cheapest_knobs(router):
    q = QUESTIONS["code"]
    assert MODELS[SCOPESelector(router, tradeoff=0.0).select(choices(), q).ind] in ("mid", "strong")
    # a huge price of a dollar: the cheapest choice wins whatever its accuracy
    assert MODELS[SCOPESelector(router, tradeoff=1e9).select(choices(), q).ind] == "cheap"


def test_choices_mapped_by_index_list_and_name(router):
    named = [ToolMetadata(name=f"engine_{i}", description=d) for i, d in enumerate("abc")]
    q = QUESTIONS["math"]
    by_list = SCOPESelector(router, ["strong", "cheap", "mid"], min_accuracy=0.9).select(named, q)
    assert by_list.ind == 0
    by_name = SCOPESelector(router, {"engine_0": "cheap", "engine_1": "mid", "engine_2": "strong"}, min_accuracy=0.9)
    assert by_name.select(named, q).ind == 2
    by_index = SCOPESelector(router, {0: "mid", 1: "strong", 2: "cheap"}, min_accuracy=0.9)
    assert by_index.select(named, q).ind == 1


def test_only_the_choices_models_compete(router):
    # strong is not offered: the math question goes to the best of what is offered
    sub = [ToolMetadata(name=m, description=m) for m in ("cheap", "mid")]
    result = SCOPESelector(router, min_accuracy=0.9).select(sub, QUESTIONS["math"])
    assert result.scope["ranking"][0] in ("cheap", "mid") and "strong" not in result.scope["ranking"]


async def test_async_select_agrees_with_sync(router):
    sel = SCOPESelector(router, min_accuracy=0.9)
    for topic, q in QUESTIONS.items():
        result = await sel.aselect(choices(), q)
        assert MODELS[result.ind] == RIGHT[topic]


# ---------------------------------------------------------------- inside LlamaIndex's routers
def engines() -> list[QueryEngineTool]:
    docs = [Document(text="Paris is the capital of France."), Document(text="Lists reverse with reversed().")]
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    return [
        QueryEngineTool(
            query_engine=index.as_query_engine(llm=NamedLLM(name=m), similarity_top_k=1),
            metadata=ToolMetadata(name=m, description=f"answers with the {m} LLM"),
        )
        for m in MODELS
    ]


def router_engine(router, **kw) -> RouterQueryEngine:
    return RouterQueryEngine(
        selector=SCOPESelector.from_defaults(router, **kw), query_engine_tools=engines(), llm=NamedLLM(name="summary")
    )


@pytest.mark.parametrize("topic", list(RIGHT))
def test_router_query_engine_answers_with_the_routed_engine(router, topic):
    response = router_engine(router, min_accuracy=0.9).query(QUESTIONS[topic])
    assert str(response).startswith(f"[{RIGHT[topic]}]")
    sel = response.metadata["selector_result"]
    assert isinstance(sel, SCOPESelection) and sel.scope["model"] == RIGHT[topic]


async def test_router_query_engine_async(router):
    engine = router_engine(router, min_accuracy=0.9)
    for topic, q in QUESTIONS.items():
        response = await engine.aquery(q)
        assert str(response).startswith(f"[{RIGHT[topic]}]")


def retriever_tools() -> list[RetrieverTool]:
    tools = []
    for m in MODELS:
        index = SummaryIndex.from_documents([Document(text=f"document served by the {m} retriever")])
        tools.append(
            RetrieverTool(retriever=index.as_retriever(), metadata=ToolMetadata(name=m, description=f"{m} docs"))
        )
    return tools


async def test_router_retriever_sync_and_async(router):
    retriever = RouterRetriever(
        selector=SCOPESelector(router, min_accuracy=0.9), retriever_tools=retriever_tools(), llm=NamedLLM(name="x")
    )
    for topic, q in QUESTIONS.items():
        nodes = retriever.retrieve(q)
        assert [n.node.get_content() for n in nodes] == [f"document served by the {RIGHT[topic]} retriever"]
        nodes = await retriever.aretrieve(q)
        assert [n.node.get_content() for n in nodes] == [f"document served by the {RIGHT[topic]} retriever"]


# ---------------------------------------------------------------- budget, feedback, events
def test_with_an_engine_prompt_estimate_the_expected_cost_is_charged_and_caps_choices(router):
    ledger = Ledger(budget=1.0)
    sel = SCOPESelector(router, min_accuracy=0.9, ledger=ledger, engine_prompt_tokens=1500)
    result = sel.select(choices(), QUESTIONS["math"])
    assert ledger.calls == 1
    entry = ledger.entries[0]
    assert entry.model == "strong" and entry.info["estimated"] is True
    assert entry.input_tokens == 1500  # priced with the engine's prompt, not the query's few tokens
    assert entry.cost == pytest.approx(result.scope["expected_cost"]) and result.scope["cost_is_estimate"]
    assert entry.cost == pytest.approx(router.cards["strong"].cost(1500, result.scope["estimates"]["strong"]["expected_output_tokens"]))
    # a budget too small for strong: the best affordable model is chosen instead
    tight = Ledger(budget=result.scope["expected_cost"] / 2)
    capped = SCOPESelector(router, min_accuracy=0.9, ledger=tight, engine_prompt_tokens=1500).select(
        choices(), QUESTIONS["math"]
    )
    assert MODELS[capped.ind] != "strong"
    assert capped.scope["expected_cost"] <= result.scope["expected_cost"] / 2


def test_charge_ledger_false_decides_with_the_ledger_but_charges_nothing(router):
    ledger = Ledger(budget=1.0)
    sel = SCOPESelector(router, min_accuracy=0.9, ledger=ledger, charge_ledger=False)
    sel.select(choices(), QUESTIONS["math"])
    assert ledger.calls == 0 and ledger.spent == 0 and ledger.reserved == 0


def test_scope_budget_block_overrides_the_constructor(router):
    built = Ledger(budget=1.0)
    block = Ledger(budget=1.0, name="block")
    sel = SCOPESelector(router, min_accuracy=0.9, ledger=built, engine_prompt_tokens=200)
    with scope_budget(ledger=block, tradeoff=1e9):
        result = sel.select(choices(), QUESTIONS["math"])
    assert MODELS[result.ind] == "cheap" and result.scope["ledger"] == "block"
    assert block.calls == 1 and built.calls == 0
    assert MODELS[sel.select(choices(), QUESTIONS["math"]).ind] == "strong"  # block over: back to built-in
    assert built.calls == 1


def test_spent_budget_raises_the_librarys_error(router):
    spent = Ledger(budget=0.0, mode="raise")
    with pytest.raises(BudgetExceeded):
        SCOPESelector(router, ledger=spent).select(choices(), QUESTIONS["trivia"])


def test_feedback_by_call_id_grows_the_history(router):
    result = SCOPESelector(router, min_accuracy=0.9).select(choices(), QUESTIONS["code"])
    before = len(router.history)
    router.record_feedback(result.call_id, correct=1.0)
    assert len(router.history) == before + 1


def test_events_are_dispatched(router, collector):
    result = SCOPESelector(router, min_accuracy=0.9).select(choices(), QUESTIONS["code"])
    (routed,) = collector.of("SCOPERoutingEvent")
    (cost,) = collector.of("SCOPECostEvent")
    assert routed.call_id == cost.call_id == result.call_id
    assert routed.source == "selector" and routed.model == "mid" and routed.knob == {"min_accuracy": 0.9}
    assert not cost.cost_is_estimate and cost.cost == 0.0  # by default a selection charges nothing
    SCOPESelector(router, min_accuracy=0.9, engine_prompt_tokens=300).select(choices(), QUESTIONS["code"])
    charged = collector.of("SCOPECostEvent")[1]
    assert charged.cost_is_estimate and charged.cost == pytest.approx(collector.of("SCOPERoutingEvent")[1].expected_cost)


# ---------------------------------------------------------------- bad input
def test_bad_input_raises_scope_errors(router):
    sel = SCOPESelector(router)
    with pytest.raises(ScopeError, match="no choices"):
        sel.select([], "trivia: anything")
    with pytest.raises(InvalidCardError, match="'nameless'.*no model card"):
        sel.select([ToolMetadata(name="nameless", description="x"), *choices()], "trivia: anything")
    with pytest.raises(InvalidCardError, match="no model card"):
        SCOPESelector(router, {"cheap": "cheap"}).select(choices(), "trivia: anything")
    with pytest.raises(InvalidCardError, match="one model per choice"):
        SCOPESelector(router, ["cheap"]).select(choices(), "trivia: anything")
    with pytest.raises(UnknownModelError, match="gpt-9"):
        SCOPESelector(router, ["cheap", "mid", "gpt-9"])
    with pytest.raises(InvalidQueryError):
        sel.select(choices(), QueryBundle(query_str="   "))
    with pytest.raises(ScopeError):
        SCOPESelector(router, max_cost=1.0, tradeoff=2.0)
    with pytest.raises(ScopeError):
        SCOPESelector(object())  # type: ignore[arg-type]


async def test_async_select_sees_the_budget_block_and_charges_it(router, collector):
    block = Ledger(budget=1.0, name="block")
    sel = SCOPESelector(router, min_accuracy=0.9, engine_prompt_tokens=200)
    with scope_budget(ledger=block, tradeoff=1e9):
        result = await sel.aselect(choices(), QUESTIONS["math"])
    assert MODELS[result.ind] == "cheap" and block.calls == 1
    assert collector.of("SCOPERoutingEvent")[0].ledger == "block"
