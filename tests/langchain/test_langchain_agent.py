"""Agents: `create_agent` with SCOPERouter as its model, and with SCOPEMiddleware (per-step routing)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fixtures_langchain import ScriptedChat, make_candidates, make_router, no_tools_chat
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from langchain_scope import SCOPEMiddleware, SCOPERouter
from scope_shared import Ledger
from scope_shared.errors import InvalidCardError


@tool
def lookup(q: int) -> str:
    """Look up a fact."""
    return f"fact {q}"


def _ai(result):
    return [m for m in result["messages"] if isinstance(m, AIMessage)]


def _middleware_agent(cands=None, **kw):
    cands = cands or make_candidates()
    mw = SCOPEMiddleware(make_router(), cands, **kw)
    return create_agent(model=cands["cheap"], tools=[lookup], middleware=[mw]), cands


def test_router_as_agent_model_routes_each_step_and_shares_one_ledger():
    agent = create_agent(model=SCOPERouter(candidates=make_candidates(), router=make_router()), tools=[lookup])
    ledger = Ledger(1.0)
    res = agent.invoke(
        {"messages": [("user", "code question 2")]},
        config={"configurable": {"scope_ledger": ledger, "min_accuracy": 0.9}},
    )
    steps = _ai(res)
    assert len(steps) == 2 and steps[0].tool_calls and steps[1].content == "mid says the answer is 42"
    ids = {s.response_metadata["scope"]["call_id"] for s in steps}
    assert len(ids) == 2  # two decisions, one per step
    assert ledger.calls == 2 and ledger.spent == pytest.approx(sum(s.response_metadata["scope"]["cost"] for s in steps))


def test_middleware_routes_every_model_call():
    agent, cands = _middleware_agent()
    ledger = Ledger(1.0, name="run")
    res = agent.invoke({"messages": [("user", "math question 2")]}, context={"scope_ledger": ledger, "min_accuracy": 0.9})
    steps = _ai(res)
    assert [s.response_metadata["model_name"] for s in steps] == ["strong", "strong"]
    assert steps[0].tool_calls and steps[1].content == "strong says the answer is 42"
    assert all(s.response_metadata["scope"]["ledger"] == "run" for s in steps)
    assert ledger.calls == 2
    # the agent's own model (cheap) was never called: the middleware swapped it per step
    assert not cands["cheap"].calls and len(cands["strong"].calls) == 2
    # the second step was routed on the conversation so far, tool result included
    step2_query = cands["strong"].calls[1]["messages"]
    assert any(m.type == "tool" for m in step2_query)


def _spend(budget: float) -> tuple[list[AIMessage], float]:
    agent, _ = _middleware_agent()
    ledger = Ledger(budget)
    res = agent.invoke({"messages": [("user", "math question 2")]}, context={"scope_ledger": ledger, "min_accuracy": 0.9})
    return _ai(res), ledger.spent


def _models(steps: list[AIMessage]) -> list[str]:
    return [s.response_metadata["model_name"] for s in steps]


def test_the_budget_shapes_each_step():
    roomy, roomy_spent = _spend(1.0)
    tight, tight_spent = _spend(0.001)
    assert _models(roomy) == ["strong", "strong"]
    assert "strong" not in _models(tight)
    assert tight_spent < roomy_spent and tight_spent <= 0.001
    # a budget that affords the strong model's expected cost (its whole first request, tool
    # schema included) once: step 1 strong, step 2 not
    expected_strong = roomy[0].response_metadata["scope"]["estimates"]["strong"]["expected_cost"]
    assert expected_strong > make_router().estimate("math question 2")["strong"].expected_cost
    steps, _ = _spend(expected_strong * 1.02)
    assert _models(steps)[0] == "strong" and _models(steps)[1] != "strong"


@dataclass
class Ctx:
    max_cost: float | None = None
    scope_ledger: Ledger | None = None


async def test_middleware_async_with_a_dataclass_context():
    cands = make_candidates()
    agent = create_agent(
        model=cands["cheap"], tools=[lookup], middleware=[SCOPEMiddleware(make_router(), cands)], context_schema=Ctx
    )
    ledger = Ledger(1.0)
    res = await agent.ainvoke({"messages": [("user", "math question 3")]}, context=Ctx(max_cost=1e-4, scope_ledger=ledger))
    steps = _ai(res)
    assert all(s.response_metadata["scope"]["knob"] == {"max_cost": 1e-4} for s in steps)
    assert "strong" not in [s.response_metadata["model_name"] for s in steps]
    assert ledger.calls == 2


def test_middleware_reads_configurable_and_its_own_defaults():
    agent, _ = _middleware_agent(tradeoff=1e9)  # default: cheapest
    res = agent.invoke({"messages": [("user", "math question")]})
    assert {s.response_metadata["model_name"] for s in _ai(res)} == {"cheap"}
    res = agent.invoke({"messages": [("user", "math question")]}, config={"configurable": {"alpha": 1.0}})
    assert {s.response_metadata["model_name"] for s in _ai(res)} == {"strong"}


def test_middleware_falls_back_and_skips_tool_less_candidates():
    cands = make_candidates(strong=ScriptedChat(label="strong", fail=-1), cheap=no_tools_chat("cheap"))
    agent, _ = _middleware_agent(cands, alpha=1.0)
    res = agent.invoke({"messages": [("user", "math question")]})
    for s in _ai(res):
        scope = s.response_metadata["scope"]
        assert scope["failed"] == [{"model": "strong", "error": "RuntimeError: strong is down"}]
        assert scope["skipped"] == {"cheap": "cannot bind tools"}
        assert s.response_metadata["model_name"] == "mid"


def test_middleware_rejects_unpaired_candidates():
    cands = make_candidates()
    cands.pop("mid")
    with pytest.raises(InvalidCardError):
        SCOPEMiddleware(make_router(), cands)
