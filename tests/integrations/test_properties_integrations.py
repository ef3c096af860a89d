"""Property tests at the integrations' faces (LangChain `SCOPERouter`, LlamaIndex `SCOPESelector`):
any input either works or raises the library's own `ScopeError` (or, for a ``max_cost`` no candidate
fits under a capping budget, stops with `BudgetExceeded`), and a failed call spends nothing and
calls no candidate."""

from __future__ import annotations

import math

import pytest
from conftest import CARDS, toy_embedder, toy_history
from fixtures_langchain import ScriptedChat, make_candidates
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage
from llama_index.core.tools import ToolMetadata

from langchain_scope import SCOPERouter
from llamaindex_scope import SCOPESelector
from scope_shared.routing.knobs import KNOB_KINDS
from scope_shared import BudgetExceeded, Ledger, Router, ScopeError
from scope_shared.query import is_blank

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
ROUTER = Router(CARDS, toy_history(), embedder=toy_embedder())
MODELS = [c.name for c in CARDS]
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))
knob_kinds = st.sampled_from(KNOB_KINDS)


def _calls(cands: dict) -> int:
    return sum(len(c.calls) for c in cands.values())


def _fits_no_candidate(kind: str, stop: BudgetExceeded) -> bool:
    return kind == "max_cost" and "fits no candidate" in str(stop)


# ---------------------------------------------------------------- LangChain SCOPERouter
@SETTINGS
@given(st.text(max_size=200))
def test_langchain_any_unicode_message(text):
    cands = make_candidates()
    ledger = Ledger(10.0)
    lc = SCOPERouter(candidates=cands, router=ROUTER, ledger=ledger)
    try:
        out = lc.invoke([HumanMessage(content=text)])
    except ScopeError:
        assert is_blank(text) and ledger.spent == 0 and ledger.reserved == 0 and _calls(cands) == 0
        return
    assert isinstance(out, AIMessage) and out.response_metadata["scope"]["model"] in MODELS
    assert ledger.spent == pytest.approx(out.response_metadata["scope"]["cost"]) and ledger.reserved == 0


def test_langchain_one_megabyte_message():
    cands = make_candidates()
    lc = SCOPERouter(candidates=cands, router=ROUTER)
    out = lc.invoke("trivia " + "ü" * 1_000_000)
    assert out.response_metadata["scope"]["model"] in MODELS


@SETTINGS
@given(knob_kinds, numbers)
def test_langchain_any_knob_value(kind, value):
    cands = make_candidates()
    ledger = Ledger(10.0)
    try:
        lc = SCOPERouter(candidates=cands, router=ROUTER, ledger=ledger, **{kind: value})
        out = lc.invoke("a code question")
    except (ScopeError, BudgetExceeded) as exc:
        assert not isinstance(exc, BudgetExceeded) or _fits_no_candidate(kind, exc)
        assert ledger.spent == 0 and ledger.reserved == 0 and _calls(cands) == 0
        return
    assert out.response_metadata["scope"]["model"] in MODELS
    # the same value through a chain's configurable
    try:
        out = SCOPERouter(candidates=make_candidates(), router=ROUTER).with_config(
            configurable={kind: value}
        ).invoke("a code question")
    except ScopeError:
        pytest.fail(f"{kind}={value!r} accepted as a field but rejected as configurable")


@SETTINGS
@given(st.lists(st.sampled_from(MODELS + ["unknown", ""]), min_size=0, max_size=5, unique=True))
def test_langchain_candidates_must_pair_with_cards(names):
    cands = {n: ScriptedChat(label=n or "x") for n in names}
    if set(names) == set(MODELS):
        assert SCOPERouter(candidates=cands, router=ROUTER).invoke("trivia?").content
        return
    with pytest.raises(ScopeError, match="candidate|card"):
        SCOPERouter(candidates=cands, router=ROUTER)


# ---------------------------------------------------------------- LlamaIndex SCOPESelector
@SETTINGS
@given(st.text(max_size=200))
def test_llamaindex_any_unicode_query(text):
    ledger = Ledger(10.0)
    sel = SCOPESelector(ROUTER, ledger=ledger)
    choices = [ToolMetadata(name=m, description=m) for m in MODELS]
    try:
        res = sel.select(choices, text)
    except ScopeError:
        assert is_blank(text) and ledger.spent == 0 and ledger.reserved == 0
        return
    assert MODELS[res.ind] in MODELS and ledger.reserved == 0
    assert math.isfinite(ledger.spent) and ledger.spent >= 0


@SETTINGS
@given(knob_kinds, numbers)
def test_llamaindex_any_knob_value(kind, value):
    ledger = Ledger(10.0)
    try:
        sel = SCOPESelector(ROUTER, ledger=ledger, **{kind: value})
        sel.select([ToolMetadata(name=m, description=m) for m in MODELS], "a math question")
    except (ScopeError, BudgetExceeded) as exc:
        assert not isinstance(exc, BudgetExceeded) or _fits_no_candidate(kind, exc)
        assert ledger.spent == 0 and ledger.reserved == 0


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(MODELS + ["ghost"]), st.text(max_size=5)), min_size=0, max_size=5))
def test_llamaindex_choices_of_any_name(names):
    ledger = Ledger(10.0)
    sel = SCOPESelector(ROUTER, ledger=ledger)
    try:
        res = sel.select([ToolMetadata(name=n, description="d") for n in names], "a code question")
    except ScopeError:
        assert ledger.spent == 0 and ledger.reserved == 0
        return
    assert names[res.ind] in MODELS
