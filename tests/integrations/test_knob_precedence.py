"""Which knob a call uses: one precedence everywhere, decided by `scope_shared.budget.settings`.

The matrix: where a knob is set (what the component was built with, a ``scope_budget`` block, the
call itself, and every combination) x the component (the core's routed call, LangChain's
`SCOPERouter` and `SCOPEMiddleware`, LlamaIndex's `SCOPELLM` and `SCOPESelector`). Each cell
asserts the knob recorded in the call's decision: per call > block > built with > router default.
Each place sets a different knob kind, so the record tells which one won.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from conftest import CARDS, toy_embedder, toy_history
from fixtures_langchain import make_candidates
from fixtures_llamaindex import MODELS, NamedLLM
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from llama_index.core.schema import QueryBundle
from llama_index.core.tools import ToolMetadata

from langchain_scope import SCOPEMiddleware, SCOPERouter
from llamaindex_scope import SCOPELLM, SCOPESelector
from scope_shared import Router, scope_budget
from scope_shared.budget.settings import Settings, settings_for_call
from scope_shared.calls import RoutedCall
from scope_shared.routing.knobs import DEFAULT_ACCURACY_MARGIN, DEFAULT_KNOB

#: a different knob kind for each place a knob can be set
BUILT = {"tradeoff": 1e9}
BLOCK = {"alpha": 0.7}
CALL = {"max_cost": 1.0}
PLACES = ("built", "block", "call")
#: every combination of places, none included
COMBOS = [c for n in range(4) for c in itertools.combinations(PLACES, n)]


def expected(places: tuple[str, ...]) -> dict[str, float]:
    for place, knob in (("call", CALL), ("block", BLOCK), ("built", BUILT)):
        if place in places:
            return knob
    return DEFAULT_KNOB.as_dict()


def router() -> Router:
    return Router(CARDS, toy_history(), embedder=toy_embedder())


@tool
def lookup(q: int) -> str:
    """Look up a fact."""
    return f"fact {q}"


# ---------------------------------------------------------------- one runner per component
def run_core(places: tuple[str, ...]) -> dict[str, float]:
    built = Settings.read(BUILT if "built" in places else None)
    call = Settings.read(CALL if "call" in places else None)
    return RoutedCall.plan(router(), "math question 3", settings_for_call(call, built=built)).decision.knob


def run_scope_router(places: tuple[str, ...]) -> dict[str, float]:
    model = SCOPERouter(candidates=make_candidates(), router=router(), **(BUILT if "built" in places else {}))
    config = {"configurable": dict(CALL)} if "call" in places else None
    return model.invoke("math question 3", config=config).response_metadata["scope"]["knob"]


def run_middleware(places: tuple[str, ...]) -> dict[str, float]:
    from langchain.agents import create_agent

    cands = make_candidates()
    mw = SCOPEMiddleware(router(), cands, **(BUILT if "built" in places else {}))
    agent = create_agent(model=cands["cheap"], tools=[lookup], middleware=[mw])
    kwargs: dict[str, Any] = {"context": dict(CALL)} if "call" in places else {}
    res = agent.invoke({"messages": [("user", "math question 3")]}, **kwargs)
    steps = [m for m in res["messages"] if isinstance(m, AIMessage)]
    assert steps
    knobs = [s.response_metadata["scope"]["knob"] for s in steps]
    assert all(k == knobs[0] for k in knobs)  # every step of the run under the same knob
    return knobs[0]


def run_llamaindex_llm(places: tuple[str, ...]) -> dict[str, float]:
    llm = SCOPELLM(router(), {m: NamedLLM(name=m) for m in MODELS}, **(BUILT if "built" in places else {}))
    kwargs = dict(CALL) if "call" in places else {}
    return llm.complete("math question 3", **kwargs).additional_kwargs["scope"]["knob"]


def run_selector(places: tuple[str, ...]) -> dict[str, float]:
    selector = SCOPESelector(router(), **(BUILT if "built" in places else {}))
    choices = [ToolMetadata(name=m, description=f"answers with the {m} LLM") for m in MODELS]
    return selector.select(choices, QueryBundle("math question 3")).scope["knob"]


RUNNERS: dict[str, Callable[[tuple[str, ...]], dict[str, float]]] = {
    "core": run_core,
    "langchain-router": run_scope_router,
    "langchain-middleware": run_middleware,
    "llamaindex-llm": run_llamaindex_llm,
    "llamaindex-selector": run_selector,
}
#: a selector has no per-call settings (LlamaIndex calls select() with choices and a query only)
CELLS = [
    (component, places)
    for component in RUNNERS
    for places in COMBOS
    if not (component == "llamaindex-selector" and "call" in places)
]


@pytest.mark.parametrize("component,places", CELLS, ids=[f"{c}-{'+'.join(p) or 'default'}" for c, p in CELLS])
def test_knob_precedence_matrix(component, places):
    run = RUNNERS[component]
    if "block" in places:
        with scope_budget(knob=BLOCK):
            used = run(places)
    else:
        used = run(places)
    assert used == expected(places)


def test_the_default_knob_is_the_accuracy_margin():
    assert DEFAULT_KNOB.as_dict() == {"accuracy_margin": DEFAULT_ACCURACY_MARGIN}
    assert router().default_knob == DEFAULT_KNOB


def test_a_router_default_knob_is_the_last_resort():
    r = Router(CARDS, toy_history(), embedder=toy_embedder(), default_knob={"min_accuracy": 0.5})
    model = SCOPERouter(candidates=make_candidates(), router=r)
    assert model.invoke("math question 3").response_metadata["scope"]["knob"] == {"min_accuracy": 0.5}
    with scope_budget(knob=BLOCK):
        assert model.invoke("math question 3").response_metadata["scope"]["knob"] == BLOCK
