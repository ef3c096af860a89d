"""LangChain: the routing text is the question, in LangChain's own templates (read from the installed
packages) and in agent steps; and the documented ways to say what to route on."""

from __future__ import annotations

import pytest
from fixtures_langchain import make_candidates, make_router
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from pydantic import BaseModel

from langchain_scope import SCOPERouter, mark_routing_text, query_text, route_on
from langchain_scope.templates import langchain_scaffolds

classic = pytest.importorskip("langchain_classic", reason="LangChain's QA chain prompts live in langchain-classic (test extra)")
from langchain_classic.chains.conversational_retrieval import prompts as conversational  # noqa: E402
from langchain_classic.chains.qa_with_sources import stuff_prompt as sources_stuff  # noqa: E402
from langchain_classic.chains.question_answering import (  # noqa: E402
    map_reduce_prompt,
    map_rerank_prompt,
    refine_prompts,
    stuff_prompt,
)

QUESTION = "What is the integral of x squared?\nGive the steps."
# retrieved context that repeats the templates' own labels, as real documents do
CONTEXT = "Question: what is the capital of France?\nHelpful Answer: Paris\nContent: trivia about cities.\n=========\n"
VALUES = {
    "context": CONTEXT, "context_str": CONTEXT, "summaries": CONTEXT, "existing_answer": "It is x^3/3.",
    "question": QUESTION, "chat_history": "Human: hi\nAssistant: hello",
}

TEMPLATES = {
    "stuff QA": stuff_prompt.PROMPT,
    "stuff QA (chat)": stuff_prompt.CHAT_PROMPT,
    "map-reduce QA, map step": map_reduce_prompt.QUESTION_PROMPT,
    "map-reduce QA, map step (chat)": map_reduce_prompt.CHAT_QUESTION_PROMPT,
    "map-reduce QA, combine step": map_reduce_prompt.COMBINE_PROMPT,
    "map-reduce QA, combine step (chat)": map_reduce_prompt.CHAT_COMBINE_PROMPT,
    "refine QA, first step": refine_prompts.DEFAULT_TEXT_QA_PROMPT,
    "refine QA, first step (chat)": refine_prompts.CHAT_QUESTION_PROMPT,
    "refine QA, refine step": refine_prompts.DEFAULT_REFINE_PROMPT,
    "refine QA, refine step (chat)": refine_prompts.CHAT_REFINE_PROMPT,
    "map-rerank QA": map_rerank_prompt.PROMPT,
    "QA with sources": sources_stuff.PROMPT,
    "conversational retrieval, condense question": conversational.CONDENSE_QUESTION_PROMPT,
}


def _messages(prompt) -> list:
    values = {k: v for k, v in VALUES.items() if k in prompt.input_variables}
    if isinstance(prompt, ChatPromptTemplate):
        return prompt.format_messages(**values)
    return [HumanMessage(prompt.format(**values))]


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_each_langchain_template_routes_on_the_question(name):
    assert query_text(_messages(TEMPLATES[name])) == QUESTION


def test_the_templates_come_from_the_installed_packages():
    names = langchain_scaffolds().names()
    assert any(n.startswith("langchain_classic.chains.question_answering.stuff_prompt") for n in names)
    assert any("CHAT_REFINE_PROMPT" in n for n in names)


class Answer(BaseModel):
    value: str
    confidence: float


@pytest.mark.parametrize("parser", [PydanticOutputParser(pydantic_object=Answer), JsonOutputParser(pydantic_object=Answer)])
def test_output_schema_instructions_are_not_routed_on(parser):
    prompt = PromptTemplate.from_template("{question}\n\n{format_instructions}")
    text = prompt.format(question=QUESTION, format_instructions=parser.get_format_instructions())
    assert query_text([SystemMessage("Be exact."), HumanMessage(text)]) == QUESTION


# ---------------------------------------------------------------- routing decisions end to end
def test_a_rag_prompt_is_routed_like_its_question():
    # toy history: "math" in a text makes it a math question (strong); the question is trivia (cheap)
    llm = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    bare = llm.invoke("trivia: capital of Peru?").response_metadata["scope"]
    rag = stuff_prompt.PROMPT.format(context="math lecture notes: integrals " * 20, question="trivia: capital of Peru?")
    routed = llm.invoke([SystemMessage("You solve math problems."), HumanMessage(rag)]).response_metadata["scope"]
    assert routed["model"] == bare["model"] == "cheap"
    assert routed["routing_text"] == "trivia: capital of Peru?"
    assert routed["routing_text_source"].startswith("template langchain_classic")


def test_feedback_stores_the_routing_text():
    router = make_router()
    llm = SCOPERouter(candidates=make_candidates(), router=router)
    rag = stuff_prompt.PROMPT.format(context="math " * 50, question="code: reverse a list")
    reply = llm.invoke(rag)
    qid = llm.record_feedback(reply, 1.0)
    assert router.history.text(qid) == "code: reverse a list"


def test_agent_steps_route_on_the_task_then_the_task_and_tool_result():
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    @tool
    def lookup(q: int) -> str:
        """Look up a fact."""
        return "math: the tool found an integral"

    llm = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    agent = create_agent(model=llm, tools=[lookup], system_prompt="You are a careful trivia agent.")
    res = agent.invoke({"messages": [("user", "trivia: who painted the Mona Lisa?")]})
    steps = [m.response_metadata["scope"] for m in res["messages"] if isinstance(m, AIMessage)]
    assert [s["routing_text"] for s in steps] == [
        "trivia: who painted the Mona Lisa?",
        "trivia: who painted the Mona Lisa?\n\nmath: the tool found an integral",
    ]
    assert steps[0]["model"] == "cheap" and steps[1]["model"] == "strong"  # the step's need changed


# ---------------------------------------------------------------- saying what to route on
def test_a_configurable_key_says_what_to_route_on():
    llm = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    out = llm.invoke("a long prompt about trivia", config={"configurable": {"scope_routing_text": "math olympiad"}})
    assert out.response_metadata["scope"]["model"] == "strong"
    assert out.response_metadata["scope"]["routing_text_source"] == "given for the call"


def test_a_marked_message_says_what_to_route_on_and_the_marker_is_not_sent():
    cands = make_candidates()
    llm = SCOPERouter(candidates=cands, router=make_router(), min_accuracy=0.9)
    msgs = [mark_routing_text(HumanMessage("math: integrate this"), True), HumanMessage("trivia: and also this")]
    out = llm.invoke(msgs)
    assert out.response_metadata["scope"]["routing_text"] == "math: integrate this"
    sent = cands["strong"].calls[0]["messages"]
    assert all("scope_routing_text" not in m.additional_kwargs for m in sent)
    out = llm.invoke([mark_routing_text(HumanMessage("long RAG prompt"), "code: sort a list")])
    assert out.response_metadata["scope"]["model"] == "mid"


def test_a_route_on_block_and_a_callable():
    llm = SCOPERouter(
        candidates=make_candidates(), router=make_router(), min_accuracy=0.9,
        routing_text=lambda messages: "math" if "hard" in messages[-1].text else None,
    )
    assert llm.invoke("a hard one").response_metadata["scope"]["model"] == "strong"
    assert llm.invoke("trivia: easy").response_metadata["scope"]["model"] == "cheap"  # None: the rule
    with route_on("code: the block's text"):
        assert llm.invoke("a hard one").response_metadata["scope"]["model"] == "mid"


def test_your_own_template_is_recognised():
    mine = ChatPromptTemplate.from_messages([("human", "Docs:\n{docs}\n\nUsing only the docs above, answer: {question}")])
    llm = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9, templates=[mine])
    out = llm.invoke(mine.format_messages(docs="math " * 30, question="trivia: tallest mountain?"))
    assert out.response_metadata["scope"]["routing_text"] == "trivia: tallest mountain?"
    assert out.response_metadata["scope"]["model"] == "cheap"


def test_misspelt_configurable_keys_warn_once():
    from langchain_scope.config import UnknownConfigKeyWarning

    llm = SCOPERouter(candidates=make_candidates(), router=make_router())
    with pytest.warns(UnknownConfigKeyWarning, match="'min_acuracy'.*did you mean 'min_accuracy'"):
        llm.invoke("trivia", config={"configurable": {"min_acuracy": 0.5, "thread_id": "t1"}})
    with pytest.warns(UnknownConfigKeyWarning, match="scope_budget"):
        llm.invoke("trivia", config={"configurable": {"scope_budget": 1.0}})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm.invoke("trivia", config={"configurable": {"min_acuracy": 0.5, "thread_id": "t1", "max_cost": 1.0}})


def test_tool_messages_in_history_do_not_hide_a_new_question():
    msgs = [
        HumanMessage("math: first task"),
        AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": "1"}]),
        ToolMessage("done", tool_call_id="1"),
        AIMessage("finished"),
        HumanMessage("trivia: new question"),
    ]
    assert query_text(msgs) == "trivia: new question"


# ---------------------------------------------------------------- hand-written RAG prompts, no template registered
HUB_RAG = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to answer "
    "the question. If you don't know the answer, just say that you don't know. Use three sentences maximum and "
    "keep the answer concise.\nQuestion: {question} \nContext: {context} \nAnswer:"
)
NOTES = [f"math lecture notes, part {i}: integrals and derivatives of polynomials, worked examples." for i in range(4)]


def _rag_chain(template: str, llm: SCOPERouter):
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_texts(NOTES)
    retriever = store.as_retriever(search_kwargs={"k": 3})
    docs_text = RunnableLambda(lambda docs: "\n\n".join(d.page_content for d in docs))
    prompt = ChatPromptTemplate.from_messages([("human", template)])
    return {"context": retriever | docs_text, "question": RunnablePassthrough()} | prompt | llm


@pytest.mark.parametrize(("template", "source"), [
    (HUB_RAG, "question section"),
    ("<documents>\n{context}\n</documents>\n<question>{question}</question>", "question tag"),
    ("{context}\n\n{question}", "beside the context"),  # no layout at all: the run knows what was retrieved
])
def test_a_rag_chain_routes_on_the_question_without_a_registered_template(template, source):
    from langchain_scope.retrieved import HANDLER

    llm = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    tracked = len(HANDLER.store)
    out = _rag_chain(template, llm).invoke("trivia: capital of Peru?")
    meta = out.response_metadata["scope"]
    assert (meta["routing_text"], meta["routing_text_source"], meta["model"]) == ("trivia: capital of Peru?", source, "cheap")
    assert len(HANDLER.store) == tracked  # the run's texts are forgotten when it ends


async def test_a_rag_chain_routes_on_the_question_async_and_in_batches():
    llm = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    chain = _rag_chain("{context}\n\n{question}", llm)
    out = await chain.ainvoke("trivia: tallest mountain?")
    assert out.response_metadata["scope"]["routing_text"] == "trivia: tallest mountain?"
    outs = chain.batch(["trivia: longest river?", "code: reverse a list"])
    assert [o.response_metadata["scope"]["routing_text"] for o in outs] == ["trivia: longest river?", "code: reverse a list"]
    assert [o.response_metadata["scope"]["model"] for o in outs] == ["cheap", "mid"]


def test_retrieved_text_only_counts_inside_its_own_run():
    llm = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    _rag_chain("{context}\n\n{question}", llm).invoke("trivia: capital of Peru?")
    # the same prompt outside a run that retrieved it has no layout to read: its whole text is the question
    prompt = "\n\n".join(NOTES[:3]) + "\n\ntrivia: capital of Peru?"
    meta = llm.invoke(prompt).response_metadata["scope"]
    assert meta["routing_text"] == prompt and meta["routing_text_source"] == "question" and meta["model"] == "strong"


def test_a_prompt_with_context_and_no_question_is_routed_whole_and_says_so(monkeypatch):
    from scope_shared.routing import routing_text as core
    from scope_shared.routing.routing_text import RoutingTextWarning

    monkeypatch.setattr(core, "_warned", False)
    llm = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    prompt = "Context:\n" + "\n\n".join(NOTES) + "\n\nSummarise the context above in two sentences."
    with pytest.warns(RoutingTextWarning):
        meta = llm.invoke(prompt).response_metadata["scope"]
    assert meta["routing_text"] == prompt and meta["routing_text_source"] == "whole_prompt"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        assert llm.invoke(prompt).response_metadata["scope"]["routing_text_source"] == "whole_prompt"
