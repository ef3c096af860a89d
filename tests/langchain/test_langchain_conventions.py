"""SCOPERouter and SCOPEMiddleware follow LangChain's conventions: structured output by the candidate's
own method, wrapped candidates, provider model names, streamed metadata, traces that name the model that
answered, copies and pickles, tool capability from cards, middleware feedback and fallbacks."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from conftest import CARDS, toy_embedder, toy_history
from fixtures_langchain import FinishedRuns, ScriptedChat, make_candidates, make_router, no_tools_chat
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_scope import SCOPEMiddleware, SCOPERouter
from scope_shared import Ledger, ModelCard, Router, ScopeError


class Joke(BaseModel):
    setup: str
    punchline: str


@tool
def lookup(q: int) -> str:
    """Look up a fact."""
    return f"fact {q}"


def llm(**kw: Any) -> SCOPERouter:
    cands = kw.pop("candidates", None) or make_candidates()
    return SCOPERouter(candidates=cands, router=kw.pop("router", None) or make_router(), min_accuracy=0.9, **kw)


# ---------------------------------------------------------------- structured output
@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_is_the_chosen_candidates_own_method(method):
    cands = make_candidates()
    out = llm(candidates=cands).with_structured_output(Joke, method=method, include_raw=True).invoke("code: a joke")
    assert isinstance(out["parsed"], Joke) and out["parsing_error"] is None
    (call,) = cands["mid"].calls
    if method == "function_calling":
        assert call["kwargs"]["tools"][0]["function"]["name"] == "Joke" and "response_format" not in call["kwargs"]
    else:  # json_schema stays json_schema (no silent switch to tool calling)
        assert call["kwargs"]["response_format"]["type"] == method and "tools" not in call["kwargs"]
    scope = out["raw"].response_metadata["scope"]
    assert scope["model"] == "mid" and scope["cost"] > 0 and scope["tokens_counted_locally"] is False


def test_structured_output_streams_and_skips_candidates_that_cannot():
    cands = make_candidates(strong=no_tools_chat("strong"))
    chunks = list(llm(candidates=cands).with_structured_output(Joke).stream("math: a joke"))
    assert chunks and all(isinstance(c, Joke) for c in chunks)
    out = llm(candidates=cands).with_structured_output(Joke, include_raw=True).invoke("math: a joke")
    assert out["raw"].response_metadata["scope"]["skipped"] == {"strong": "cannot produce structured output"}


async def test_structured_output_async():
    out = await llm().with_structured_output(Joke.model_json_schema(), method="json_schema").ainvoke("trivia: a joke")
    assert set(out) == {"setup", "punchline"}
    chunks = [c async for c in llm().with_structured_output(Joke).astream("trivia: a joke")]
    assert isinstance(chunks[-1], Joke)


# ---------------------------------------------------------------- wrapped candidates
def test_wrapped_candidates_are_accepted_and_keep_their_wrappers():
    flaky = ScriptedChat(label="mid", fail=1)
    cands = {
        "cheap": ScriptedChat(label="cheap").bind(stop=["\n\n"]),
        "mid": flaky.with_retry(stop_after_attempt=2, wait_exponential_jitter=False),
        "strong": ScriptedChat(label="strong").with_config(tags=["strong"]),
    }
    router = llm(candidates=cands)
    assert router.invoke("code: sort a list").content == "mid says the answer is 42"  # retried inside the candidate
    flaky.fail = 1
    bound = router.bind_tools([lookup]).invoke("code: look up 7")
    assert bound.tool_calls[0]["args"] == {"q": 7}  # tools bound through with_retry, and it retried
    assert router.invoke("trivia: x").response_metadata["scope"]["model"] == "cheap"


def test_configurable_init_chat_model_candidates(monkeypatch):
    import langchain.chat_models.base as base

    monkeypatch.setattr(base, "_init_chat_model_helper", lambda model, **kw: ScriptedChat(label=model))
    cands = {n: base.init_chat_model(n, configurable_fields=("model",)) for n in ("cheap", "mid", "strong")}
    out = llm(candidates=cands).bind_tools([lookup]).invoke("math: look up 3")
    assert out.tool_calls[0]["args"] == {"q": 3} and out.response_metadata["scope"]["model"] == "strong"


def test_a_non_runnable_candidate_gets_a_clear_error():
    with pytest.raises(ScopeError, match="'mid' is a str, not a LangChain chat model"):
        llm(candidates={**make_candidates(), "mid": "gpt-4o"})


# ---------------------------------------------------------------- metadata and streaming
def test_provider_model_name_is_kept_and_the_card_name_is_under_scope():
    cands = make_candidates(mid=ScriptedChat(label="mid", provider_model_name="provider/mid-2025"))
    out = llm(candidates=cands).invoke("code: x")
    assert out.response_metadata["model_name"] == "provider/mid-2025"
    assert out.response_metadata["scope"]["model"] == "mid"
    chunks = list(llm(candidates=cands).stream("code: x"))
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    assert merged.response_metadata["model_name"] == "provider/mid-2025"


def test_the_last_chunk_carries_the_record_and_is_marked_last():
    chunks = list(llm().stream("code: x"))
    assert chunks[-1].chunk_position == "last" and "scope" in chunks[-1].response_metadata
    assert all("scope" not in c.response_metadata and c.chunk_position != "last" for c in chunks[:-1])
    assert chunks[-1].response_metadata["scope"]["cost"] > 0 and chunks[-1].usage_metadata is not None


@pytest.mark.parametrize("streamed", [False, True])
def test_after_a_fallback_the_routing_runs_metadata_names_the_model_that_answered(streamed):
    cands = make_candidates(strong=ScriptedChat(label="strong", fail=-1))
    tracer = FinishedRuns()
    router = llm(candidates=cands)
    if streamed:
        list(router.stream("math: x", config={"callbacks": [tracer]}))
    else:
        router.invoke("math: x", config={"callbacks": [tracer]})
    (routing,) = [r for r in tracer.done if r.name == "SCOPERouter"]
    assert routing.metadata["scope_chosen"] == "strong"
    assert routing.metadata["scope_model"] == "mid" and routing.metadata["scope_failed"] == ["strong"]


# ---------------------------------------------------------------- copies, pickles, cards
def test_deepcopy_shares_the_router_and_ledger_pickle_says_what_to_do():
    ledger = Ledger(1.0)
    original = llm(ledger=ledger)
    clone = copy.deepcopy(original)
    assert clone is not original and clone.router is original.router and clone.ledger is ledger
    clone.invoke("trivia: x")
    assert ledger.calls == 1  # one budget, not two
    with pytest.raises(ScopeError, match="Router is live shared state.*History.load"):
        pickle.dumps(original)
    with pytest.raises(ScopeError, match="Ledger is live shared state"):
        pickle.dumps(ledger)


def test_tool_capability_comes_from_the_card_when_given():
    cards = [c if c.name != "strong" else ModelCard(**{**c.model_dump(), "supports_tools": False}) for c in CARDS]
    router = Router(cards, toy_history(), embedder=toy_embedder())
    out = llm(router=router).bind_tools([lookup]).invoke("math: look up 1")
    assert out.response_metadata["scope"]["skipped"] == {"strong": "cannot bind tools"}
    assert out.response_metadata["scope"]["model"] != "strong"


# ---------------------------------------------------------------- middleware
def _agent(middleware: list, cands: dict) -> Any:
    from langchain.agents import create_agent

    return create_agent(model=cands["cheap"], tools=[lookup], middleware=middleware)


def test_middleware_record_feedback_replaces_per_step():
    router = make_router()
    cands = make_candidates()
    mw = SCOPEMiddleware(router, cands, min_accuracy=0.9)
    res = _agent([mw], cands).invoke({"messages": [("user", "trivia: look up 2")]})
    step = [m for m in res["messages"] if isinstance(m, AIMessage)][-1]
    n = router.history.n_records
    qid = mw.record_feedback(step, 1.0)
    mw.record_feedback(step, 0.0)
    assert router.history.n_records == n + 1
    assert router.history.text(qid) == "trivia: look up 2\n\nfact 2"  # the step's routing text


def test_recipe_model_fallback_middleware_outside_scope():
    from langchain.agents.middleware import ModelFallbackMiddleware

    dead = {n: ScriptedChat(label=n, fail=-1) for n in ("cheap", "mid", "strong")}
    backup = ScriptedChat(label="backup", provider_model_name="backup-model")
    ledger = Ledger(1.0)
    mw = SCOPEMiddleware(make_router(), dead, ledger=ledger)
    res = _agent([ModelFallbackMiddleware(backup), mw], dead).invoke({"messages": [("user", "code: look up 5")]})
    steps = [m for m in res["messages"] if isinstance(m, AIMessage)]
    assert steps and all(s.response_metadata["model_name"] == "backup-model" for s in steps)
    scope = steps[-1].response_metadata["scope"]
    assert scope["routed"] is False and scope["model"] is None
    assert {f["model"] for f in scope["failed"]} == {"cheap", "mid", "strong"}
    assert ledger.calls == 0 and len(backup.calls) == len(steps)
    with pytest.raises(ScopeError, match="not answered by a SCOPE-routed candidate"):
        mw.record_feedback(steps[-1], 1.0)
    # candidates that work: SCOPE answers, the fallback middleware is never used
    alive = make_candidates()
    res = _agent([ModelFallbackMiddleware(backup), SCOPEMiddleware(make_router(), alive, min_accuracy=0.8)], alive).invoke(
        {"messages": [("user", "code: look up 5")]}
    )
    assert all(m.response_metadata["scope"]["model"] == "mid" for m in res["messages"] if isinstance(m, AIMessage))
