"""The router as a native chat-model run: LangGraph's ``stream_mode="messages"`` and tracers see the
router's own run and chunks (the last one carrying the routing record), the answering candidate's run
nested under it and never streamed twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fixtures_langchain import FinishedRuns, RunLog, ScriptedChat, make_candidates, make_router
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel

from langchain_scope import SCOPEMiddleware, SCOPERouter


@tool
def lookup(q: int) -> str:
    """Look up a fact."""
    return f"fact {q}"


def _router_agent(cands: dict[str, Any] | None = None) -> Any:
    router = SCOPERouter(candidates=cands or make_candidates(), router=make_router(), min_accuracy=0.9)
    return create_agent(model=router, tools=[lookup])


def _middleware_agent(cands: dict[str, Any] | None = None) -> Any:
    cands = cands or make_candidates()
    return create_agent(model=cands["cheap"], tools=[lookup], middleware=[SCOPEMiddleware(make_router(), cands, min_accuracy=0.9)])


AGENTS = {"router": _router_agent, "middleware": _middleware_agent}


def _check_steps(parts: list[tuple[Any, dict[str, Any]]], expected_models: list[str]) -> None:
    """Model chunks grouped by message id: one message per agent step, none emitted twice, the
    last chunk of each carrying the step's routing record and no earlier chunk carrying one."""
    chunks = [(m, meta) for m, meta in parts if isinstance(m, AIMessageChunk)]
    assert all(not isinstance(m, AIMessage) or isinstance(m, AIMessageChunk) for m, _ in parts)
    steps: dict[str, list[AIMessageChunk]] = {}
    for message, meta in chunks:
        assert meta["langgraph_node"] == "model"
        steps.setdefault(message.id, []).append(message)
    assert len(steps) == len(expected_models)  # one reply per step: the candidate's chunks are not re-emitted
    for (_id, step), model in zip(steps.items(), expected_models):
        assert all("scope" not in c.response_metadata for c in step[:-1])
        record = step[-1].response_metadata["scope"]
        assert step[-1].chunk_position == "last" and record["model"] == model
        whole = step[0]
        for c in step[1:]:
            whole = whole + c
        assert whole.tool_calls or whole.content == f"{model} says the answer is 42"
    # no chunk object twice, and the tool step's result arrives once
    assert len({id(m) for m, _ in parts}) == len(parts)
    assert Counter(type(m) for m, _ in parts)[ToolMessage] == 1


@pytest.mark.parametrize("kind", AGENTS)
def test_an_agent_streamed_in_messages_mode_shows_the_routing_record_on_the_last_chunk(kind):
    agent = AGENTS[kind]()
    parts = list(agent.stream({"messages": [("user", "math question 2")]}, stream_mode="messages"))
    _check_steps(parts, ["strong", "strong"])


@pytest.mark.parametrize("kind", AGENTS)
async def test_an_agent_streamed_async_in_messages_mode(kind):
    agent = AGENTS[kind]()
    parts = [p async for p in agent.astream({"messages": [("user", "code question 2")]}, stream_mode="messages")]
    _check_steps(parts, ["mid", "mid"])


@pytest.mark.parametrize("kind", AGENTS)
def test_after_a_fallback_the_last_chunk_names_the_model_that_answered(kind):
    cands = make_candidates(strong=ScriptedChat(label="strong", fail=1))
    agent = AGENTS[kind](cands)
    parts = list(agent.stream({"messages": [("user", "math question 2")]}, stream_mode="messages"))
    chunks = [m for m, _ in parts if isinstance(m, AIMessageChunk)]
    records = [c.response_metadata["scope"] for c in chunks if "scope" in c.response_metadata]
    assert [r["model"] for r in records] == ["mid", "strong"]
    assert [f["model"] for f in records[0]["failed"]] == ["strong"]


@pytest.mark.parametrize("kind", AGENTS)
def test_the_agents_model_runs_are_routing_runs_with_the_candidate_nested(kind):
    log = RunLog()
    agent = AGENTS[kind]()
    agent.invoke({"messages": [("user", "math question 2")]}, config={"callbacks": [log]})
    routing = log.routing_runs()
    name = "SCOPERouter" if kind == "router" else "SCOPEMiddleware"
    assert len(routing) == 2 and all(r["name"] == name for r in routing)
    assert all(r["metadata"]["scope_model"] == "strong" and r["metadata"]["scope_ranking"][0] == "strong" for r in routing)
    assert all(r["metadata"]["ls_provider"] == "scope" and r["metadata"]["ls_model_type"] == "chat" for r in routing)
    candidates = log.candidate_runs()
    assert sorted(c["parent"] for c in candidates) == sorted(r["run_id"] for r in routing)
    assert all("nostream" in c["tags"] for c in candidates)


@pytest.mark.parametrize("path", ["invoke", "stream", "batch", "generate"])
def test_every_path_traces_a_chat_model_run_with_the_candidate_nested(path):
    router = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    tracer = FinishedRuns()
    config = {"callbacks": [tracer]}
    if path == "invoke":
        router.invoke("math question 2", config=config)
    elif path == "stream":
        list(router.stream("math question 2", config=config))
    elif path == "batch":
        router.batch(["math question 2", "trivia question 2"], config=config)
    else:
        router.generate([[HumanMessage(content="math question 2")]], callbacks=[tracer])
    roots = [r for r in tracer.done if r.name == "SCOPERouter"]
    assert roots and all(r.run_type == "llm" and r.parent_run_id is None for r in roots)
    for root in roots:
        assert root.extra["metadata"]["ls_provider"] == "scope"
        assert root.extra["metadata"]["scope_model"] in ("strong", "cheap")
        (child,) = root.child_runs
        assert child.run_type == "llm" and child.name == "ScriptedChat" and "nostream" in child.tags
        assert child.parent_run_id == root.id
    assert len(tracer.done) == 2 * len(roots)  # each call: the router's run and the candidate's, nothing else


class Answer(BaseModel):
    text: str


@pytest.mark.parametrize("what", ["router", "structured"])
def test_called_inside_a_step_the_candidate_still_nests_under_the_routing_run(what):
    """A step that calls the router without passing its config (LangChain's context carries it):
    the candidate's run is the routing run's child, not the step's."""
    router = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    model = router.bind_tools([lookup]) if what == "router" else router.with_structured_output(Answer)
    tracer = FinishedRuns()
    RunnableLambda(lambda q: model.invoke(q)).invoke("math question 2", config={"callbacks": [tracer]})
    (routing,) = [r for r in tracer.done if r.name == "SCOPERouter"]
    (candidate,) = [r for r in tracer.done if r.name == "ScriptedChat"]
    by_id = {r.id: r for r in tracer.done}
    parent = candidate.parent_run_id
    while parent is not None and parent != routing.id:  # (structured output: through the candidate's own chain)
        parent = by_id[parent].parent_run_id
    assert parent == routing.id
    assert routing.run_type == ("llm" if what == "router" else "chain")


@pytest.mark.parametrize("kind", AGENTS)
async def test_an_agents_astream_events_show_each_step_as_a_routing_chat_model_run(kind):
    agent = AGENTS[kind]()
    events = [e async for e in agent.astream_events({"messages": [("user", "code question 2")]}, version="v2")]
    name = "SCOPERouter" if kind == "router" else "SCOPEMiddleware"
    steps = {e["run_id"]: e for e in events if e["event"] == "on_chat_model_start" and e["name"] == name}
    assert len(steps) == 2 and all(e["metadata"]["scope_model"] == "mid" for e in steps.values())
    nested = [e for e in events if e["event"] == "on_chat_model_start" and e["name"] == "ScriptedChat"]
    assert sorted(e["parent_ids"][-1] for e in nested) == sorted(steps)
    for run_id in steps:
        own = [e["data"]["chunk"] for e in events if e["event"] == "on_chat_model_stream" and e["run_id"] == run_id]
        assert own and own[-1].response_metadata["scope"]["model"] == "mid"
        assert all("scope" not in c.response_metadata for c in own[:-1])
        (end,) = [e for e in events if e["event"] == "on_chat_model_end" and e["run_id"] == run_id]
        assert end["data"]["output"].response_metadata["scope"]["model"] == "mid"


def test_stream_events_v3_go_through_langchains_own_run_with_the_decision_added():
    router = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)
    tracer = FinishedRuns()
    events = list(router.stream_events("math question 2", version="v3", config={"callbacks": [tracer]}))
    assert events[-1]["event"] == "message-finish" and events[-1]["metadata"]["scope"]["model"] == "strong"
    (routing,) = [r for r in tracer.done if r.name == "SCOPERouter"]
    (candidate,) = [r for r in tracer.done if r.name == "ScriptedChat"]
    assert routing.run_type == "llm" and routing.extra["metadata"]["scope_model"] == "strong"
    assert candidate.parent_run_id == routing.id and "nostream" in candidate.tags
