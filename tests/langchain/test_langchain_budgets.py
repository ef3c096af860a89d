"""Budgets with LangChain: the knob and the ledger per chain (configurable), caps, whole-prompt holds,
stopped streams, nesting, end mode, agent context, the fallback filter, and a stop that a default
``with_fallbacks`` does not swallow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import CARDS
from fixtures_langchain import ScriptedChat, make_candidates, make_router
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableLambda
from langchain_core.tools import tool

from langchain_scope import SCOPEMiddleware, SCOPERouter, with_budget
from scope_shared import AllCandidatesFailed, BudgetExceeded, Ledger, scope_budget
from scope_shared.calls import prompt_tokens

CONTEXT = "retrieved passage about the topic. " * 300  # ~2,600 tokens of context


def _cfg(ledger: Ledger, **knob: Any) -> dict:
    return {"configurable": {"scope_ledger": ledger, **knob}}


def _router(**kw: Any) -> tuple[SCOPERouter, dict]:
    cands = kw.pop("candidates", None) or make_candidates()
    return SCOPERouter(candidates=cands, router=make_router(), **kw), cands


class Peek(ScriptedChat):
    """Records what the ledger holds while it is being called."""

    ledger: Any = None
    held: list[float] = []

    def _reply(self, messages, **kwargs):  # type: ignore[no-untyped-def]
        self.held.append(self.ledger.reserved)
        return super()._reply(messages, **kwargs)


class HalfStream(ScriptedChat):
    """Streams two chunks, then the connection drops."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        from langchain_core.outputs import ChatGenerationChunk

        self.calls.append({"messages": list(messages)})
        yield ChatGenerationChunk(message=AIMessageChunk(content=f"{self.label} "))
        yield ChatGenerationChunk(message=AIMessageChunk(content="says "))
        raise ConnectionError("stream reset")


class AuthError(Exception):
    pass


# ---------------------------------------------------------------- a cap, not swallowed
def test_a_spent_budget_stops_the_call_and_a_default_with_fallbacks_does_not_swallow_it():
    llm, cands = _router()
    backup = ScriptedChat(label="backup")
    chain = llm.with_fallbacks([backup])
    with pytest.raises(BudgetExceeded):
        chain.invoke("math question", config=_cfg(Ledger(0.0)))
    assert not backup.calls and not any(c.calls for c in cands.values())


async def test_async_stop_passes_with_fallbacks_but_an_outage_falls_back():
    llm, _ = _router(candidates={n: ScriptedChat(label=n, fail=-1) for n in ("cheap", "mid", "strong")})
    backup = ScriptedChat(label="backup")
    chain = llm.with_fallbacks([backup])
    with pytest.raises(BudgetExceeded):
        await chain.ainvoke("math question", config=_cfg(Ledger(0.0)))
    assert not backup.calls
    out = await chain.ainvoke("math question", config=_cfg(Ledger(1.0)))  # every candidate down
    assert out.content == "backup says the answer is 42"
    with pytest.raises(AllCandidatesFailed) as err:
        await llm.ainvoke("math question")
    assert isinstance(err.value.__cause__, RuntimeError) and len(err.value.errors) == 3


def test_batch_returns_budget_stops_as_values():
    llm, _ = _router()
    ledger = Ledger(0.0)
    out = llm.batch(["math q", "code q"], config=_cfg(ledger), return_exceptions=True)
    assert all(isinstance(o, BudgetExceeded) for o in out)
    with pytest.raises(BudgetExceeded):
        llm.batch(["math q"], config=_cfg(ledger))


async def test_abatch_returns_budget_stops_as_values():
    llm, _ = _router()
    out = await llm.abatch(["math q", "trivia q"], config=_cfg(Ledger(0.0)), return_exceptions=True)
    assert all(isinstance(o, BudgetExceeded) for o in out)


def test_max_cost_no_candidate_fits_is_flagged_or_stops():
    llm, _ = _router()
    out = llm.invoke("math question", config={"configurable": {"max_cost": 1e-12}})
    scope = out.response_metadata["scope"]
    assert scope["over_max_cost"] is True and scope["model"] == "cheap"
    assert "no candidate fits max_cost" in scope["explanation"]
    with pytest.raises(BudgetExceeded, match="fits no candidate"):
        llm.invoke("math question", config=_cfg(Ledger(1.0), max_cost=1e-12))


# ---------------------------------------------------------------- the hold prices the whole prompt
@pytest.mark.parametrize("asynchronous", [False, True])
async def test_the_hold_prices_every_message_sent(asynchronous):
    ledger = Ledger(10.0)
    peek = Peek(label="strong", ledger=ledger, held=[])
    llm, _ = _router(candidates=make_candidates(strong=peek), min_accuracy=0.9)
    messages = [SystemMessage(content=f"Answer from this context:\n{CONTEXT}"), HumanMessage(content="math question")]
    config = _cfg(ledger)
    out = await llm.ainvoke(messages, config=config) if asynchronous else llm.invoke(messages, config=config)
    scope = out.response_metadata["scope"]
    counter = llm.router.count_tokens
    sent = prompt_tokens([m.content for m in messages], counter)
    assert scope["model"] == "strong" and scope["estimates"]["strong"]["input_tokens"] == sent
    est = scope["estimates"]["strong"]
    assert peek.held == [pytest.approx(llm.router.cards["strong"].cost(sent, est["expected_output_tokens"]))]
    assert sent > 20 * counter("math question")  # the routing text alone would have held ~1/20 of it


def test_bound_tool_schemas_are_priced():
    llm, _ = _router(min_accuracy=0.9)

    def lookup(q: int) -> int:
        """Look something up in the big reference table of facts."""
        return q

    plain = llm.invoke("math question").response_metadata["scope"]["estimates"]["strong"]["input_tokens"]
    tooled = llm.bind_tools([lookup]).invoke("math question").response_metadata["scope"]
    assert tooled["estimates"]["strong"]["input_tokens"] > plain


# ---------------------------------------------------------------- streams stopped early
def test_a_stream_stopped_after_two_chunks_is_charged_those_tokens():
    llm, _ = _router(min_accuracy=0.9)
    ledger = Ledger(1.0)
    stream = llm.stream("trivia question", config=_cfg(ledger))
    got = [next(stream), next(stream)]
    assert ledger.reserved > 0
    stream.close()  # "stop generating"
    assert "".join(c.content for c in got) == "cheap says "
    assert ledger.reserved == 0 and ledger.calls == 1
    (entry,) = ledger.entries
    counter = llm.router.count_tokens
    # the two chunks handed out, and the one held back behind them (produced, so billed)
    assert entry.output_tokens == counter("cheap says the ") > counter("cheap says ")
    assert entry.info["partial"] is True
    assert entry.info["stopped"] == "closed by the consumer" and entry.info["counted"] is True
    assert entry.cost == pytest.approx(llm.router.cards["cheap"].cost(entry.input_tokens, entry.output_tokens))
    record = llm.router.calls.get(entry.info["call_id"])
    assert record.stopped == "closed by the consumer" and record.metadata()["partial"] is True


def test_breaking_out_of_a_stream_settles_it():
    llm, _ = _router(min_accuracy=0.9)
    ledger = Ledger(1.0)
    for i, _chunk in enumerate(llm.stream("trivia question", config=_cfg(ledger))):
        if i == 1:
            break
    assert ledger.reserved == 0 and ledger.calls == 1 and ledger.entries[0].info["partial"]


async def test_an_async_stream_closed_or_cancelled_is_charged_at_once():
    llm, _ = _router(min_accuracy=0.9)
    ledger = Ledger(1.0)
    stream = llm.astream("trivia question", config=_cfg(ledger))
    await stream.__anext__()
    await stream.__anext__()
    await stream.aclose()
    assert ledger.reserved == 0 and ledger.calls == 1 and ledger.entries[0].info["partial"]

    class Slow(ScriptedChat):
        async def _astream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            from langchain_core.outputs import ChatGenerationChunk

            yield ChatGenerationChunk(message=AIMessageChunk(content="cheap "))
            yield ChatGenerationChunk(message=AIMessageChunk(content="says "))
            await asyncio.sleep(30)  # the client disconnects while we wait

    slow, _ = _router(candidates=make_candidates(cheap=Slow(label="cheap")), min_accuracy=0.9)
    ledger2 = Ledger(1.0)
    seen: list[str] = []

    async def consume() -> None:
        async for chunk in slow.astream("trivia question", config=_cfg(ledger2)):
            seen.append(chunk.content)

    task = asyncio.create_task(consume())
    while len(seen) < 1:  # one chunk is held back: by now both have been produced
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (entry,) = ledger2.entries
    assert ledger2.reserved == 0 and entry.info["stopped"] == "cancelled"
    assert entry.output_tokens == slow.router.count_tokens("cheap says ")


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_stream_failing_part_way_is_charged_and_raised(asynchronous):
    llm, cands = _router(candidates=make_candidates(cheap=HalfStream(label="cheap")), min_accuracy=0.9)
    ledger = Ledger(1.0)
    with pytest.raises(ConnectionError):
        if asynchronous:
            [c async for c in llm.astream("trivia question", config=_cfg(ledger))]
        else:
            list(llm.stream("trivia question", config=_cfg(ledger)))
    (entry,) = ledger.entries
    assert entry.model == "cheap" and entry.info["partial"] and "stream reset" in entry.info["stopped"]
    assert not cands["mid"].calls  # no switch mid-stream


# ---------------------------------------------------------------- nesting
@pytest.mark.parametrize("asynchronous", [False, True])
async def test_with_budget_nests_a_chains_budget_inside_the_runs(asynchronous):
    llm, _ = _router(min_accuracy=0.9)
    team, research = Ledger(1.0, name="team"), Ledger(0.5, name="research")
    step = ChatPromptTemplate.from_messages([("human", "{q}")]) | llm
    pipeline = with_budget(step, research) | RunnableLambda(lambda m: {"q": f"trivia follow-up: {m.content}"}) | step
    # the LangChain pitfall with_budget avoids: a bound configurable loses to the caller's
    replaced = step.with_config(configurable={"scope_ledger": research})
    config = _cfg(team)
    if asynchronous:
        await pipeline.ainvoke({"q": "code question"}, config=config)
        await replaced.ainvoke({"q": "code question"}, config=config)
    else:
        pipeline.invoke({"q": "code question"}, config=config)
        replaced.invoke({"q": "code question"}, config=config)
    assert [e.model for e in research.entries] == ["mid"]  # only the nested step
    assert [e.model for e in team.entries] == ["mid", "cheap", "mid"]  # every step
    assert research.entries[0] is team.entries[0]


def test_scope_budget_blocks_and_ledger_parents_nest_with_config_ledgers():
    llm, _ = _router(min_accuracy=0.9)
    org = Ledger(5.0, name="org")
    team = Ledger(1.0, name="team", parent=org)
    block = Ledger(2.0, name="block")
    with scope_budget(ledger=block):
        out = llm.invoke("math question", config=_cfg(team))
    assert out.response_metadata["scope"]["ledger"] == "team"
    assert team.calls == org.calls == block.calls == 1
    assert team.spent == org.spent == block.spent == pytest.approx(out.response_metadata["scope"]["cost"])


def test_an_inner_budget_that_is_spent_stops_the_call_though_the_outer_has_room():
    llm, _ = _router()
    with pytest.raises(BudgetExceeded) as stop:
        with_budget(llm, Ledger(0.0, name="inner")).invoke("math question", config=_cfg(Ledger(10.0)))
    assert stop.value.ledger == "inner"


# ---------------------------------------------------------------- end mode and agents
@tool
def lookup(q: int) -> str:
    """Look up a fact."""
    return f"fact {q}"


def _ai(result: dict) -> list[AIMessage]:
    return [m for m in result["messages"] if isinstance(m, AIMessage)]


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_end_mode_answers_with_a_final_message(asynchronous):
    llm, cands = _router()
    ledger = Ledger(0.0, mode="end", name="run")
    out = await llm.ainvoke("math q", config=_cfg(ledger)) if asynchronous else llm.invoke("math q", config=_cfg(ledger))
    assert isinstance(out, AIMessage) and not out.tool_calls and "budget is spent" in out.content
    assert out.response_metadata["scope"]["budget_exhausted"] is True and out.response_metadata["scope"]["ledger"] == "run"
    chunks = [c async for c in llm.astream("math q", config=_cfg(ledger))] if asynchronous else list(
        llm.stream("math q", config=_cfg(ledger))
    )
    assert len(chunks) == 1 and "budget is spent" in chunks[0].content
    assert not any(c.calls for c in cands.values()) and ledger.spent == 0


def _spending_tool(ledger: Ledger) -> Any:
    """A tool whose work spends what is left of the run's budget (a sub-agent, a paid API...)."""

    @tool
    def research(q: int) -> str:
        """Research a fact (costly)."""
        ledger.charge(max(ledger.remaining, 0.0), model="research-api")
        return f"fact {q}"

    return research


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_create_agent_with_the_router_as_model_reads_context_and_ends_gracefully(asynchronous):
    llm, _ = _router()
    ledger = Ledger(1.0, mode="end", name="agent")
    agent = create_agent(model=llm, tools=[_spending_tool(ledger)])
    state = {"messages": [("user", "math question 2")]}
    context = {"scope_ledger": ledger, "min_accuracy": 0.9}
    res = await agent.ainvoke(state, context=context) if asynchronous else agent.invoke(state, context=context)
    steps = _ai(res)
    assert len(steps) == 2 and steps[0].tool_calls
    first = steps[0].response_metadata["scope"]
    assert first["ledger"] == "agent" and first["knob"] == {"min_accuracy": 0.9}  # read from context=
    assert steps[1].response_metadata["scope"]["budget_exhausted"] is True and not steps[1].tool_calls
    assert ledger.spent == pytest.approx(1.0) and ledger.overshoot.overdraw == 0
    raising = Ledger(1.0, name="agent")  # the same budget in raise mode stops the run instead
    agent = create_agent(model=llm, tools=[_spending_tool(raising)])
    with pytest.raises(BudgetExceeded):
        agent.invoke(state, context={"scope_ledger": raising})


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_middleware_end_mode_ends_the_agent_run(asynchronous):
    cands = make_candidates()
    mw = SCOPEMiddleware(make_router(), cands, min_accuracy=0.9)
    agent = create_agent(model=cands["cheap"], tools=[lookup], middleware=[mw])
    state = {"messages": [("user", "math question 2")]}
    ledger = Ledger(0.0, mode="end")
    res = await agent.ainvoke(state, context={"scope_ledger": ledger}) if asynchronous else agent.invoke(
        state, context={"scope_ledger": ledger}
    )
    (final,) = _ai(res)
    assert "budget is spent" in final.content and not any(c.calls for c in cands.values())


# ---------------------------------------------------------------- which errors move on
class AuthFailing(ScriptedChat):
    def _reply(self, messages, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append({"messages": list(messages)})
        raise AuthError("invalid API key")


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_errors_outside_fallback_on_are_not_retried_on_every_candidate(asynchronous):
    cands = make_candidates(strong=AuthFailing(label="strong"))
    llm, _ = _router(candidates=cands, min_accuracy=0.9, fallback_on=(ConnectionError, TimeoutError))
    ledger = Ledger(1.0)
    with pytest.raises(AuthError):  # the provider's own exception, so with_retry filters match it
        await llm.ainvoke("math q", config=_cfg(ledger)) if asynchronous else llm.invoke("math q", config=_cfg(ledger))
    assert len(cands["strong"].calls) == 1 and not cands["mid"].calls and ledger.reserved == 0
    default, _ = _router(candidates=make_candidates(strong=AuthFailing(label="strong")), min_accuracy=0.9)
    assert default.invoke("math q").response_metadata["scope"]["model"] == "mid"  # default: any Exception


def test_middleware_fallback_on():
    cands = make_candidates(strong=AuthFailing(label="strong"))
    mw = SCOPEMiddleware(make_router(), cands, min_accuracy=0.9, fallback_on=(ConnectionError,))
    agent = create_agent(model=cands["cheap"], tools=[lookup], middleware=[mw])
    with pytest.raises(AuthError):
        agent.invoke({"messages": [("user", "math question")]})
    assert len(cands["strong"].calls) == 1 and not cands["mid"].calls


# ================================================================ the knob and the ledger per chain
CARD = {c.name: c for c in CARDS}


@pytest.fixture
def cands():
    return make_candidates()


@pytest.fixture
def lc_router(cands):
    return SCOPERouter(candidates=cands, router=make_router())


def _chain(m):
    return ChatPromptTemplate.from_messages([("human", "{q}")]) | m


# ---------------------------------------------------------------- knob per chain
def test_with_config_changes_the_knob_without_rebuilding(lc_router):
    chain = _chain(lc_router)
    accurate = chain.with_config(configurable={"min_accuracy": 0.9})
    thrifty = chain.with_config(configurable={"max_cost": 1e-5})
    assert accurate.invoke({"q": "math question 1"}).response_metadata["model_name"] == "strong"
    out = thrifty.invoke({"q": "math question 1"})
    assert out.response_metadata["model_name"] == "cheap"
    assert out.response_metadata["scope"]["knob"] == {"max_cost": 1e-5}
    # same router object underneath both
    assert accurate.bound.last is thrifty.bound.last is lc_router


def test_call_config_beats_router_fields_which_beat_the_core_default(cands):
    m = SCOPERouter(candidates=cands, router=make_router(), tradeoff=1e9)  # field: cheapest
    assert m.invoke("math q").response_metadata["scope"]["knob"] == {"tradeoff": 1e9}
    assert m.invoke("math q").response_metadata["model_name"] == "cheap"
    out = m.invoke("math q", config={"configurable": {"alpha": 1.0}})
    assert out.response_metadata["scope"]["knob"] == {"alpha": 1.0}
    assert out.response_metadata["model_name"] == "strong"
    plain = SCOPERouter(candidates=cands, router=make_router())
    assert plain.invoke("math q").response_metadata["scope"]["knob"] == plain.router.default_knob.as_dict()


def test_configurable_field_under_a_scope_key_does_not_clash(cands):
    m = SCOPERouter(candidates=cands, router=make_router())
    c = m.configurable_fields(min_accuracy=ConfigurableField(id="min_accuracy"))
    out = _chain(c).with_config(configurable={"min_accuracy": 0.9}).invoke({"q": "math q"})
    assert out.response_metadata["model_name"] == "strong"


def test_configurable_fields_keeps_router_history_and_ledger(cands):
    """The pitfall: configurable_fields rebuilds the model from its fields only."""
    ledger = Ledger(1.0, name="field-ledger")
    base = SCOPERouter(candidates=cands, router=make_router(), ledger=ledger, min_accuracy=0.9)
    configurable = base.configurable_fields(
        context_chars=ConfigurableField(id="ctx"),
        min_accuracy=ConfigurableField(id="acc_floor"),
    )
    chain = _chain(configurable) | StrOutputParser()
    assert chain.with_config(configurable={"ctx": 10, "acc_floor": 0.0}).invoke({"q": "math question"}) == (
        "cheap says the answer is 42"
    )
    assert chain.with_config(configurable={"acc_floor": 0.9}).invoke({"q": "math question"}) == (
        "strong says the answer is 42"
    )
    assert ledger.calls == 2  # the excluded ledger field survived the rebuild
    out = _chain(configurable).with_config(configurable={"ctx": 10, "alpha": 0.0}).invoke({"q": "code question"})
    assert out.response_metadata["model_name"] == "cheap"
    # the rebuilt model shares the router (history, estimator, call book) with the original
    assert base.router.calls.get(out.response_metadata["scope"]["call_id"]).model == "cheap"


# ---------------------------------------------------------------- ledgers
def test_a_ledger_attached_to_a_chain_collects_every_routed_step(lc_router):
    ledger = Ledger(1.0, name="run")
    two_steps = _chain(lc_router) | StrOutputParser() | (lambda s: {"q": f"trivia follow-up to: {s}"}) | _chain(lc_router)
    out = two_steps.with_config(configurable={"scope_ledger": ledger, "min_accuracy": 0.9}).invoke({"q": "code question"})
    assert ledger.calls == 2
    assert [e.model for e in ledger.entries] == ["mid", "cheap"]
    assert ledger.spent == pytest.approx(CARD["mid"].cost(12, 34) + CARD["cheap"].cost(12, 34))
    assert ledger.reserved == 0
    assert out.response_metadata["scope"]["ledger"] == "run"


def test_two_chains_sharing_a_router_keep_separate_ledgers(lc_router):
    l1, l2 = Ledger(1.0, name="a"), Ledger(1.0, name="b")
    c1 = _chain(lc_router).with_config(configurable={"scope_ledger": l1, "min_accuracy": 0.9})
    c2 = _chain(lc_router).with_config(configurable={"scope_ledger": l2, "min_accuracy": 0.9})
    c1.invoke({"q": "math question"})
    c2.invoke({"q": "trivia question"})
    c2.invoke({"q": "trivia question 2"})
    assert [e.model for e in l1.entries] == ["strong"]
    assert [e.model for e in l2.entries] == ["cheap", "cheap"]


async def test_ledger_async_and_batch(lc_router):
    ledger = Ledger(1.0)
    cfg = {"configurable": {"scope_ledger": ledger, "min_accuracy": 0.9}}
    await lc_router.ainvoke("math q", config=cfg)
    await lc_router.abatch(["code q", "trivia q"], config=cfg)
    assert sorted(e.model for e in ledger.entries) == ["cheap", "mid", "strong"]


def test_remaining_budget_shapes_the_decision(lc_router):
    strong_cost = lc_router.router.estimate("math question")["strong"].expected_cost
    small = Ledger(strong_cost / 2)
    out = lc_router.invoke("math question", config={"configurable": {"scope_ledger": small, "min_accuracy": 0.9}})
    assert out.response_metadata["model_name"] != "strong"
    assert out.response_metadata["scope"]["budget_left"] == pytest.approx(strong_cost / 2)


def test_spent_budget_raises_before_any_call_when_set_to_raise(lc_router, cands):
    ledger = Ledger(0.0, mode="raise")
    with pytest.raises(BudgetExceeded):
        lc_router.invoke("math question", config={"configurable": {"scope_ledger": ledger}})
    assert not any(c.calls for c in cands.values())


def test_spent_budget_falls_back_to_the_cheapest_when_configured(lc_router, cands):
    ledger = Ledger(0.0, mode="soft")
    out = lc_router.invoke("math question", config={"configurable": {"scope_ledger": ledger, "min_accuracy": 0.9}})
    assert out.response_metadata["model_name"] == "cheap"
    assert out.response_metadata["scope"]["fallback_to_cheapest"] is True
    assert not cands["strong"].calls and not cands["mid"].calls
