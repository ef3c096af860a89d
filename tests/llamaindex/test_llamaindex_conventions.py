"""LlamaIndex conventions: counted once by TokenCountingHandler, span ids on every event, the call id
reachable from structured outputs and retriever results, choosing a data source by description and
the model tier by SCOPE, typed packages, consistent names."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import toy_embedder
from fixtures_llamaindex import MODELS, NamedLLM, collector  # noqa: F401  (fixture)
from llama_index.core import Document, PromptTemplate, Settings, SummaryIndex, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.selectors import EmbeddingSingleSelector
from llama_index.core.tools import QueryEngineTool, RetrieverTool, ToolMetadata
from pydantic import BaseModel
from test_llamaindex_routing_text import JSONLLM

from llamaindex_scope import (
    SCOPELLM,
    SCOPEEmbedding,
    SCOPERouterRetriever,
    SCOPESelector,
    collect_calls,
)


def _count_words(text: str) -> list[str]:
    return text.split()


def test_token_counting_handler_counts_each_call_once(router):
    counter = TokenCountingHandler(tokenizer=_count_words)
    saved = Settings._callback_manager
    try:
        Settings.callback_manager = CallbackManager([counter])
        llm = SCOPELLM(router, {m: NamedLLM(name=m) for m in MODELS})
        Settings.llm = llm
        Settings.llm.complete("trivia: x")  # the getter re-assigns Settings' manager
        assert len(counter.llm_token_counts) == 1
        list(llm.stream_complete("code: y"))
        assert len(counter.llm_token_counts) == 2
    finally:
        Settings._callback_manager = saved
        Settings._llm = None


def test_every_event_has_a_span_even_after_a_stream_is_consumed(router, collector):
    llm = SCOPELLM(router, {m: NamedLLM(name=m) for m in MODELS})
    gen = llm.stream_complete("trivia: x")
    list(gen)  # consumed outside the LLM span
    (routed,) = collector.of("SCOPERoutingEvent")
    (cost,) = collector.of("SCOPECostEvent")
    assert routed.span_id is not None and cost.span_id == routed.span_id


async def test_async_stream_events_share_the_span(router, collector):
    llm = SCOPELLM(router, {m: NamedLLM(name=m) for m in MODELS})
    gen = await llm.astream_complete("code: y")
    _ = [c async for c in gen]
    (routed,) = collector.of("SCOPERoutingEvent")
    (cost,) = collector.of("SCOPECostEvent")
    assert routed.span_id is not None and cost.span_id == routed.span_id


class Answer(BaseModel):
    value: str
    confidence: float


def test_call_id_reachable_from_structured_outputs(router):
    llm = SCOPELLM(router, {m: JSONLLM(name=m) for m in MODELS}, min_accuracy=0.9)
    response = llm.as_structured_llm(Answer).chat([ChatMessage(role="user", content="code: sort it")])
    assert isinstance(response.raw, Answer)
    scope = response.additional_kwargs["scope"]
    assert scope["model"] == "mid" and router.record_feedback(scope["call_id"], 1.0) >= 0
    with collect_calls() as calls:
        out = llm.structured_predict(Answer, PromptTemplate("{question}"), question="math: integrate x")
    assert isinstance(out, Answer) and [c.model for c in calls] == ["strong"]
    router.record_feedback(calls[-1].call_id, 0.0)


async def test_call_id_reachable_from_async_structured_outputs(router):
    llm = SCOPELLM(router, {m: JSONLLM(name=m) for m in MODELS}, min_accuracy=0.9)
    response = await llm.as_structured_llm(Answer).achat([ChatMessage(role="user", content="trivia: x")])
    assert response.additional_kwargs["scope"]["model"] == "cheap"


def test_router_retriever_nodes_carry_the_call_id(router):
    tools = []
    indexes = {}
    for m in MODELS:
        indexes[m] = SummaryIndex.from_documents([Document(text=f"document served by the {m} retriever")])
        tools.append(RetrieverTool(retriever=indexes[m].as_retriever(), metadata=ToolMetadata(name=m, description=m)))
    retriever = SCOPERouterRetriever(selector=SCOPESelector(router, min_accuracy=0.9), retriever_tools=tools, llm=NamedLLM(name="x"))
    (node,) = retriever.retrieve("code: reverse a list")
    assert node.node.metadata["scope_model"] == "mid"
    assert "scope_call_id" not in node.node.get_content(metadata_mode="llm")
    router.record_feedback(node.node.metadata["scope_call_id"], 1.0)
    stored = next(iter(indexes["mid"].docstore.docs.values()))
    assert "scope_call_id" not in stored.metadata  # the index's own node is untouched


def test_choose_the_source_by_description_then_the_tier_by_scope(router, collector):
    """The documented composition: any LlamaIndex selector picks the data source by its description;
    each source's engine answers with SCOPELLM, which picks the model tier per call."""
    embed = SCOPEEmbedding(toy_embedder())
    llm = SCOPELLM(router, {m: NamedLLM(name=m) for m in MODELS}, min_accuracy=0.9)
    sources = {"math": "math lecture notes", "trivia": "trivia almanac"}
    tools = [
        QueryEngineTool(
            query_engine=VectorStoreIndex.from_documents([Document(text=text)], embed_model=embed).as_query_engine(llm=llm),
            metadata=ToolMetadata(name=name, description=f"{name}: {text}"),
        )
        for name, text in sources.items()
    ]
    engine = RouterQueryEngine(selector=EmbeddingSingleSelector.from_defaults(embed_model=embed), query_engine_tools=tools, llm=llm)
    response = engine.query("math: what is the derivative of x squared?")
    assert str(response).startswith("[strong]")  # the math source, answered by the tier SCOPE chose
    assert response.metadata["selector_result"].ind == 0


def test_packages_are_typed_and_names_are_consistent():
    root = Path(__file__).resolve().parents[2]
    for pkg in ("scope_shared", "langchain_scope", "llamaindex_scope"):
        assert (root / pkg / "py.typed").exists()
    assert SCOPEEmbedding.class_name() == "SCOPEEmbedding"


@pytest.mark.parametrize("name", ["SCOPELLM", "SCOPESelector", "SCOPEEmbedding", "SCOPERouterRetriever"])
def test_namespaces_export_the_names(name):
    import llama_index.embeddings.scope as e
    import llama_index.llms.scope as lm
    import llama_index.selectors.scope as s

    assert any(hasattr(mod, name) for mod in (e, lm, s))
