"""LlamaIndex: the routing text is the question, in LlamaIndex's own templates (from the installed
llama_index.core), in query engines of every response mode, structured outputs and agent steps."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures_llamaindex import MODELS, NamedLLM, collector  # noqa: F401  (fixture)
from llama_index.core import ChatPromptTemplate, Document, PromptTemplate, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, LLMMetadata
from llama_index.core.chat_engine import condense_question
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.prompts import chat_prompts, default_prompts
from llama_index.core.selectors import prompts as selector_prompts
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llamaindex_scope import SCOPELLM, mark_routing_text, query_text, route_on

QUESTION = "What is the integral of x squared?\nGive the steps."
CONTEXT = "Query: what is the capital of France?\nAnswer: Paris\n---------------------\ntrivia about cities"
VALUES = {
    "context_str": CONTEXT, "context_msg": CONTEXT, "existing_answer": "x^3/3", "query_str": QUESTION,
    "schema": "CREATE TABLE t (a int)", "context_list": "(1) math\n(2) code", "num_choices": 2,
    "max_outputs": 1, "question": QUESTION, "chat_history": "Human: hi", "context_messages": [ChatMessage(content=CONTEXT)],
}
TEMPLATES = {
    "text QA": default_prompts.DEFAULT_TEXT_QA_PROMPT,
    "text QA (chat)": chat_prompts.CHAT_TEXT_QA_PROMPT,
    "text QA (chat content)": chat_prompts.CHAT_CONTENT_QA_PROMPT,
    "refine": default_prompts.DEFAULT_REFINE_PROMPT,
    "refine (chat)": chat_prompts.CHAT_REFINE_PROMPT,
    "refine (chat content)": chat_prompts.CHAT_CONTENT_REFINE_PROMPT,
    "refine with a table (chat)": chat_prompts.CHAT_REFINE_TABLE_CONTEXT_PROMPT,
    "tree summarize": default_prompts.DEFAULT_TREE_SUMMARIZE_PROMPT,
    "tree summarize (chat)": chat_prompts.CHAT_TREE_SUMMARIZE_PROMPT,
    "tree summarize (chat content)": chat_prompts.CHAT_CONTENT_TREE_SUMMARIZE_PROMPT,
    "single selector": selector_prompts.DEFAULT_SINGLE_SELECT_PROMPT,
    "condense question chat engine": condense_question.DEFAULT_PROMPT,
}


def _routing_text(prompt) -> str:
    values = {k: v for k, v in VALUES.items() if k in (prompt.template_vars or []) or k == "context_messages"}
    if isinstance(prompt, (type(chat_prompts.CHAT_TEXT_QA_PROMPT), type(chat_prompts.CHAT_CONTENT_QA_PROMPT))):
        return query_text(prompt.format_messages(**values))
    return query_text(prompt.format(**values))


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_each_llamaindex_template_routes_on_the_question(name):
    assert _routing_text(TEMPLATES[name]) == QUESTION


def test_a_plain_prompt_is_routed_as_it_is():
    assert query_text("trivia: plain prompt") == "trivia: plain prompt"


# ---------------------------------------------------------------- pipelines end to end
class ChatNamedLLM(NamedLLM):
    """A stand-in chat model (so LlamaIndex picks its chat templates: chat refine, chat text QA)."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.name, context_window=4096, num_output=256, is_chat_model=True)


def _index() -> VectorStoreIndex:
    docs = [Document(text=f"math notes part {i}: integrals and derivatives " * 5) for i in range(3)]
    return VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))


@pytest.mark.parametrize("mode", ["compact", "refine", "tree_summarize", "simple_summarize"])
def test_query_engines_route_every_call_on_the_question(router, collector, mode):
    llm = SCOPELLM(router, {m: ChatNamedLLM(name=m) for m in MODELS}, min_accuracy=0.9)
    engine = _index().as_query_engine(llm=llm, response_mode=mode, similarity_top_k=3)
    engine.query("trivia: what is the capital of Peru?")
    routed = collector.of("SCOPERoutingEvent")
    assert routed and {e.query for e in routed} == {"trivia: what is the capital of Peru?"}
    assert {e.model for e in routed} == {"cheap"}  # the math context does not move it to strong


class JSONLLM(NamedLLM):
    """Answers with a JSON object, as an LLM asked for structured output would."""

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.calls += 1
        return CompletionResponse(text='{"value": "x**3/3", "confidence": 0.9}')


class Answer(BaseModel):
    value: str
    confidence: float


def test_structured_predict_without_tools_routes_on_the_question_not_the_schema(router, collector):
    llm = SCOPELLM(router, {m: JSONLLM(name=m) for m in MODELS}, min_accuracy=0.9)
    out = llm.structured_predict(Answer, PromptTemplate("Answer exactly: {question}"), question="trivia: 2+2?")
    assert out == Answer(value="x**3/3", confidence=0.9)
    (routed,) = collector.of("SCOPERoutingEvent")
    assert routed.query == "Answer exactly: trivia: 2+2?"
    sllm = llm.as_structured_llm(Answer)
    sllm.chat([ChatMessage(role="system", content="Be exact."), ChatMessage(role="user", content="code: sort it")])
    assert collector.of("SCOPERoutingEvent")[-1].query == "code: sort it"


def test_a_chat_with_only_a_system_message_routes_on_it_without_the_schema(router, collector):
    llm = SCOPELLM(router, {m: JSONLLM(name=m) for m in MODELS}, min_accuracy=0.9)
    prompt = ChatPromptTemplate.from_messages([("system", "code: extract the function name from {text}")])
    llm.structured_predict(Answer, prompt, text="def f(): pass")
    assert collector.of("SCOPERoutingEvent")[-1].query == "code: extract the function name from def f(): pass"


async def test_function_agent_steps_route_on_the_task_then_the_tool_result(router, collector):
    def lookup() -> str:
        """Look something up."""
        return "math: the tool found an integral"

    llm = SCOPELLM(router, {"mid": MockFunctionCallingLLM(), "strong": MockFunctionCallingLLM()}, min_accuracy=0.9)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(lookup)], llm=llm, streaming=False, system_prompt="Be a good agent.")
    await agent.run(user_msg="code: how do I reverse a list?")
    queries = [e.query for e in collector.of("SCOPERoutingEvent")]
    assert queries == ["code: how do I reverse a list?", "code: how do I reverse a list?\n\nmath: the tool found an integral"]
    assert [e.model for e in collector.of("SCOPERoutingEvent")] == ["mid", "strong"]


# ---------------------------------------------------------------- saying what to route on
def test_per_call_keyword_marked_message_block_and_callable(router, collector):
    llms = {m: NamedLLM(name=m) for m in MODELS}
    llm = SCOPELLM(router, llms, min_accuracy=0.9)
    assert llm.complete("trivia: x", routing_text="math: y").additional_kwargs["scope"]["model"] == "strong"
    marked = mark_routing_text(ChatMessage(role="user", content="long prompt"), "code: the real ask")
    chat = llm.chat([marked])
    assert chat.additional_kwargs["scope"]["model"] == "mid"
    assert chat.additional_kwargs["scope"]["routing_text_source"] == "marked message"
    with route_on("math: from the block"):
        assert llm.complete("trivia: x").additional_kwargs["scope"]["model"] == "strong"
    by_fn = SCOPELLM(router, llms, min_accuracy=0.9, routing_text=lambda src: None if isinstance(src, str) else "math")
    assert by_fn.complete("trivia: x").additional_kwargs["scope"]["model"] == "cheap"
    assert by_fn.chat([ChatMessage(role="user", content="trivia: x")]).additional_kwargs["scope"]["model"] == "strong"


def test_your_own_template(router):
    mine = PromptTemplate("Notes:\n{notes}\n\nFrom the notes only, reply to: {query_str}")
    llm = SCOPELLM(router, {m: NamedLLM(name=m) for m in MODELS}, min_accuracy=0.9, templates=[mine])
    response = llm.complete(mine.format(notes="math " * 30, query_str="trivia: tallest mountain?"))
    assert response.additional_kwargs["scope"]["routing_text"] == "trivia: tallest mountain?"


# ---------------------------------------------------------------- hand-written RAG prompts, no template registered
@pytest.mark.parametrize(("template", "source"), [
    ("### Context\n{context_str}\n\n### Question\n{query_str}\n\n### Answer\n", "question section"),
    ("{context_str}\n\n{query_str}", "beside the context"),  # no layout at all: the query knows what was retrieved
])
@pytest.mark.parametrize("chat", [True, False])
def test_a_query_engine_routes_on_the_question_without_a_registered_template(router, template, source, chat):
    from llamaindex_scope import collect_calls

    child = ChatNamedLLM if chat else NamedLLM
    llm = SCOPELLM(router, {m: child(name=m) for m in MODELS}, min_accuracy=0.9)
    engine = _index().as_query_engine(llm=llm, text_qa_template=PromptTemplate(template), similarity_top_k=3)
    with collect_calls() as calls:
        engine.query("trivia: what is the capital of Peru?")
    assert calls, "the engine made no routed call"
    for record in calls:
        meta = record.metadata()
        assert (meta["routing_text"], meta["routing_text_source"]) == ("trivia: what is the capital of Peru?", source)
        assert meta["model"] == "cheap"  # the math context does not move it to strong


async def test_an_async_query_engine_routes_on_the_question(router):
    from llamaindex_scope import collect_calls

    llm = SCOPELLM(router, {m: ChatNamedLLM(name=m) for m in MODELS}, min_accuracy=0.9)
    engine = _index().as_query_engine(llm=llm, text_qa_template=PromptTemplate("{context_str}\n\n{query_str}"))
    with collect_calls() as calls:
        await engine.aquery("trivia: tallest mountain?")
    assert calls and {r.query for r in calls} == {"trivia: tallest mountain?"}


def test_retrieved_text_only_counts_inside_its_own_query(router):
    from llamaindex_scope.retrieved import STORE

    llm = SCOPELLM(router, {m: ChatNamedLLM(name=m) for m in MODELS}, min_accuracy=0.9)
    tracked = len(STORE)
    _index().as_query_engine(llm=llm, text_qa_template=PromptTemplate("{context_str}\n\n{query_str}")).query("trivia: x?")
    assert len(STORE) <= tracked + 1  # the query's spans are forgotten when it ends
    prompt = "math notes part 0: integrals and derivatives " * 5 + "\n\ntrivia: x?"
    meta = llm.complete(prompt).additional_kwargs["scope"]
    assert meta["routing_text"] == prompt and meta["model"] == "strong"
