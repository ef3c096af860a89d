"""SCOPERouter: budget per chain (configurable, ledgers), tools, fallback, feedback, bad input."""

from __future__ import annotations

import uuid

import pytest
from conftest import CARDS, toy_history
from fixtures_langchain import ScriptedChat, make_candidates, make_router, no_tools_chat
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField
from pydantic import BaseModel

from langchain_scope import NoCandidatesError, NoToolCapableCandidate, SCOPERouter
from scope_shared import (
    BudgetExceeded,
    InvalidCardError,
    InvalidKnobError,
    InvalidQueryError,
    Ledger,
    ModelCard,
)
from scope_shared.errors import InvalidBudgetError
from scope_shared.calls import AllCandidatesFailed

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


# ---------------------------------------------------------------- tools and structure
def test_bind_tools_applies_to_the_chosen_candidate_and_skips_tool_less_ones():
    cands = make_candidates(cheap=no_tools_chat("cheap"))
    m = SCOPERouter(candidates=cands, router=make_router(), min_accuracy=0.9)

    def lookup(q: int) -> int:
        """Look something up."""
        return q

    bound = m.bind_tools([lookup])
    out = bound.invoke("trivia question 4")  # cheap would win, but it cannot bind tools
    scope = out.response_metadata["scope"]
    assert scope["skipped"] == {"cheap": "cannot bind tools"}
    assert "cheap" not in scope["estimates"]
    assert out.response_metadata["model_name"] == "mid"
    assert out.tool_calls[0]["name"] == "lookup"
    assert cands["mid"].calls[0]["kwargs"]["tools"][0]["function"]["name"] == "lookup"


async def test_bind_tools_async():
    m = SCOPERouter(candidates=make_candidates(), router=make_router(), min_accuracy=0.9)

    def lookup(q: int) -> int:
        """Look something up."""
        return q

    out = await m.bind_tools([lookup], tool_choice="any").ainvoke("math question")
    assert out.response_metadata["model_name"] == "strong" and out.tool_calls


def test_bind_tools_fails_clearly_when_no_candidate_can():
    cands = {n: no_tools_chat(n) for n in ("cheap", "mid", "strong")}
    m = SCOPERouter(candidates=cands, router=make_router())
    with pytest.raises(NoToolCapableCandidate):
        m.bind_tools([lambda x: x])


class Answer(BaseModel):
    q: int


def test_with_structured_output_goes_through_the_chosen_candidate():
    cands = make_candidates()
    m = SCOPERouter(candidates=cands, router=make_router(), min_accuracy=0.9)
    result = m.with_structured_output(Answer).invoke("code question")
    assert result == Answer(q=1)
    assert cands["mid"].calls[0]["kwargs"]["tool_choice"] == "any"
    raw = m.with_structured_output(Answer, include_raw=True).invoke("math question")
    assert raw["parsed"] == Answer(q=1)
    assert raw["raw"].response_metadata["model_name"] == "strong"


# ---------------------------------------------------------------- fallback
def test_a_failing_candidate_falls_back_to_the_next_ranked(cands):
    cands["strong"] = ScriptedChat(label="strong", fail=-1)
    ledger = Ledger(1.0)
    m = SCOPERouter(candidates=cands, router=make_router(), alpha=1.0)
    out = m.invoke("math question", config={"configurable": {"scope_ledger": ledger}})
    scope = out.response_metadata["scope"]
    assert scope["chosen"] == "strong" and scope["model"] == out.response_metadata["model_name"] != "strong"
    assert scope["failed"] == [{"model": "strong", "error": "RuntimeError: strong is down"}]
    assert [e.model for e in ledger.entries] == [scope["model"]]  # only the answer is charged
    assert ledger.reserved == 0


async def test_fallback_async_and_streaming(cands):
    cands["strong"] = ScriptedChat(label="strong", fail=-1)
    m = SCOPERouter(candidates=cands, router=make_router(), alpha=1.0)
    out = await m.ainvoke("math question")
    assert out.response_metadata["scope"]["failed"][0]["model"] == "strong"
    chunks = list(m.stream("math question"))
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.response_metadata["scope"]["failed"][0]["model"] == "strong"
    assert merged.response_metadata["model_name"] != "strong"


def test_all_candidates_failing_raises_and_releases_the_budget():
    ledger = Ledger(1.0)
    dead = {n: ScriptedChat(label=n, fail=-1) for n in ("cheap", "mid", "strong")}
    m = SCOPERouter(candidates=dead, router=make_router())
    with pytest.raises(AllCandidatesFailed, match="cheap is down"):
        m.invoke("trivia", config={"configurable": {"scope_ledger": ledger}})
    assert ledger.reserved == 0 and ledger.spent == 0


# ---------------------------------------------------------------- feedback
def test_feedback_by_run_id_or_message_reaches_the_history(lc_router):
    history = lc_router.router.history
    before = len(history.records)
    rid = uuid.uuid4()
    out = lc_router.invoke("a brand new trivia question", config={"run_id": rid, "configurable": {"min_accuracy": 0.9}})
    qid = lc_router.record_feedback(rid, correct=0.0)
    assert history.text(qid) == "a brand new trivia question"
    (new,) = history.records[before:]
    assert new.question_id == qid
    assert new.outcome.model == "cheap" and new.outcome.correct == 0.0
    assert new.outcome.output_tokens == 34 and new.outcome.input_tokens == 12  # the real usage
    # the core router accepts the same id (as a string); the reply itself works too
    assert lc_router.router.record_feedback(str(rid), correct=1.0) == qid
    assert lc_router.record_feedback(out, correct=0.5) == qid
    # feedback on the same call replaces the earlier one: one outcome, the last score
    (new,) = history.records[before:]
    assert new.outcome.correct == 0.5


def test_feedback_changes_later_estimates():
    router = make_router()
    m = SCOPERouter(candidates=make_candidates(), router=router, min_accuracy=0.9)
    q = "zebra puzzle"  # no topic: the toy embedder puts it off every topic
    p_before = router.estimate(q)["cheap"].p_correct
    for _ in range(5):
        out = m.invoke(q, model="cheap")
        m.record_feedback(out, correct=0.0)
    assert router.estimate(q)["cheap"].p_correct < p_before


# ---------------------------------------------------------------- bad input
def test_bad_construction_raises_scope_errors():
    router = make_router()
    with pytest.raises(NoCandidatesError):
        SCOPERouter(candidates={}, router=router)
    extra = make_candidates(other=ScriptedChat(label="other"))
    with pytest.raises(InvalidCardError, match="'other' have no model card"):
        SCOPERouter(candidates=extra, router=router)
    missing = make_candidates()
    missing.pop("strong")
    with pytest.raises(InvalidCardError, match="'strong' have no candidate"):
        SCOPERouter(candidates=missing, router=router)
    with pytest.raises(InvalidKnobError):
        SCOPERouter(candidates=make_candidates(), router=router, alpha=0.5, max_cost=1.0)
    with pytest.raises(InvalidKnobError):
        SCOPERouter(candidates=make_candidates(), router=router, min_accuracy=2.0)


def test_from_cards_and_history():
    m = SCOPERouter(candidates=make_candidates(), cards=CARDS, history=toy_history(), embedder=make_router().embedder)
    assert m.invoke("math question", config={"configurable": {"min_accuracy": 0.9}}).response_metadata["model_name"] == "strong"
    m2 = SCOPERouter.from_defaults(make_candidates(), CARDS, toy_history(), embedder=make_router().embedder)
    assert m2.router.models == ["cheap", "mid", "strong"]


def test_bad_calls_raise_before_any_candidate_is_called(lc_router, cands):
    with pytest.raises(InvalidQueryError):
        lc_router.invoke([HumanMessage(content="")])
    with pytest.raises(InvalidQueryError):
        lc_router.invoke("   ")
    with pytest.raises(InvalidKnobError):
        lc_router.invoke("q", config={"configurable": {"max_cost": -1}})
    with pytest.raises(InvalidBudgetError):
        lc_router.invoke("q", config={"configurable": {"scope_ledger": 5.0}})
    with pytest.raises(KeyError):
        lc_router.invoke("q", model="gpt-unknown")
    assert not any(c.calls for c in cands.values())


def test_added_model_needs_a_candidate():
    router = make_router()
    router.add_model(ModelCard(name="new", input_price=0.5, output_price=0.5), {"math question number 1": 1.0})
    with pytest.raises(InvalidCardError, match="'new'"):
        SCOPERouter(candidates=make_candidates(), router=router)
    m = SCOPERouter(candidates=make_candidates(new=ScriptedChat(label="new")), router=router)
    assert "new" in m.invoke("math question").response_metadata["scope"]["estimates"]
