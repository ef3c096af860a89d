"""What the components promise at their edges, the same in both integrations: misspelt constructor
keywords fail loudly, every knob is configurable, a soft budget never stops a call (also under
real asyncio concurrency), and one rule for turns without user text."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import CARDS, toy_embedder, toy_history
from fixtures_langchain import make_candidates
from fixtures_llamaindex import MODELS, NamedLLM
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import ConfigurableField
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, ImageBlock, TextBlock
from llama_index.core.llms.callbacks import llm_completion_callback

from langchain_scope import SCOPEMiddleware, SCOPERouter
from llamaindex_scope import SCOPELLM, SCOPESelector
from scope_shared import BudgetExceeded, Ledger, Router
from scope_shared.errors import InvalidQueryError, UnknownArgumentError
from scope_shared.budget.settings import Settings, settings_for_call
from scope_shared.calls import RoutedCall, Usage


def router() -> Router:
    return Router(CARDS, toy_history(), embedder=toy_embedder())


# ---------------------------------------------------------------- unknown constructor keywords
@pytest.mark.parametrize(
    "build",
    [
        lambda r: SCOPERouter(candidates=make_candidates(), router=r, min_acuracy=0.5),
        lambda r: SCOPERouter.from_defaults(make_candidates(), CARDS, toy_history(), embedder=toy_embedder(), min_acuracy=0.5),
        lambda r: SCOPEMiddleware(r, make_candidates(), min_acuracy=0.5),
        lambda r: SCOPELLM(r, {m: NamedLLM(name=m) for m in MODELS}, min_acuracy=0.5),
        lambda r: SCOPESelector(r, min_acuracy=0.5),
        lambda r: SCOPESelector.from_defaults(r, min_acuracy=0.5),
    ],
    ids=["SCOPERouter", "SCOPERouter.from_defaults", "SCOPEMiddleware", "SCOPELLM", "SCOPESelector", "SCOPESelector.from_defaults"],
)
def test_a_misspelt_keyword_is_refused_naming_the_closest_valid_one(build):
    with pytest.raises(UnknownArgumentError, match=r"'min_acuracy'.*did you mean 'min_accuracy'\?"):
        build(router())
    with pytest.raises(TypeError):  # also Python's own error type for a bad keyword
        build(router())


def test_the_frameworks_own_keywords_still_pass():
    r = router()
    assert SCOPERouter(candidates=make_candidates(), router=r, tags=["t"], model_name="m").tags == ["t"]
    assert SCOPELLM(r, {m: NamedLLM(name=m) for m in MODELS}, system_prompt="Be brief.").system_prompt == "Be brief."


# ---------------------------------------------------------------- every knob configurable
@pytest.mark.parametrize("kind,value", [("max_cost", 1.0), ("tradeoff", 1e9), ("alpha", 0.0), ("accuracy_margin", 0.5)])
def test_every_knob_is_a_configurable_field_whatever_the_constructor_set(kind, value):
    base = SCOPERouter(candidates=make_candidates(), router=router(), min_accuracy=0.9)
    configurable = base.configurable_fields(**{kind: ConfigurableField(id="chosen_knob")})
    out = configurable.invoke("math question 3", config={"configurable": {"chosen_knob": value}})
    assert out.response_metadata["scope"]["knob"] == {kind: value}
    # not configured for this call: the constructor's knob
    assert configurable.invoke("math question 3").response_metadata["scope"]["knob"] == {"min_accuracy": 0.9}


# ---------------------------------------------------------------- a soft budget never stops a call
def test_a_soft_budget_holds_calls_that_decided_on_room_others_took():
    r = router()
    cheap = r.estimate("trivia question 1", ["cheap"])["cheap"].expected_cost
    ledger = Ledger(budget=cheap * 1.5, mode="soft")
    settings = settings_for_call(Settings.read(ledger=ledger, tradeoff=1e9))
    # every call decides first, while the room is still there (as concurrent calls do) ...
    calls = [RoutedCall.plan(r, "trivia question 1", settings) for _ in range(4)]
    assert not any(c.decision.fallback_to_cheapest for c in calls)
    # ... then each holds and answers: the later ones overdraw the soft budget instead of stopping
    for call in calls:
        model = next(call.models_to_try())
        call.succeeded(model, Usage(input_tokens=10, output_tokens=50))
    assert ledger.calls == 4 and ledger.spent > ledger.budget
    # a capping budget in the same race still stops the calls it cannot pay for
    cap = Ledger(budget=cheap * 1.5)
    capped = [RoutedCall.plan(r, "trivia question 1", settings_for_call(Settings.read(ledger=cap, tradeoff=1e9))) for _ in range(2)]
    assert next(capped[0].models_to_try()) == "cheap"
    assert list(capped[1].models_to_try()) == []
    assert isinstance(capped[1].all_failed(), BudgetExceeded)


class SlowLLM(NamedLLM):
    """A stand-in whose async completion takes a while, so concurrent calls overlap."""

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        await asyncio.sleep(0.05)
        self.calls += 1
        return CompletionResponse(text=self._text(), additional_kwargs={"prompt_tokens": 20, "completion_tokens": 40})


async def test_a_soft_budget_never_raises_under_concurrent_async_queries():
    r = router()
    cheap = r.estimate("trivia question 1", ["cheap"])["cheap"].expected_cost
    ledger = Ledger(budget=cheap * 3, mode="soft")
    llm = SCOPELLM(r, {m: SlowLLM(name=m) for m in MODELS}, tradeoff=1e9, ledger=ledger)
    answers = await asyncio.gather(*(llm.acomplete(f"trivia question {i}") for i in range(8)))
    assert len(answers) == 8 and all(a.additional_kwargs["scope"]["model"] for a in answers)
    assert ledger.calls == 8 and ledger.spent > ledger.budget  # overdrawn, as a soft budget may be


# ---------------------------------------------------------------- turns without user text
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="


def _lc(kind: str) -> list[Any]:
    image = HumanMessage(content=[{"type": "image_url", "image_url": {"url": IMAGE}}])
    return {
        "image-only": [image],
        "image+system": [SystemMessage("Describe what you see."), image],
        "empty user": [HumanMessage(content="")],
        "system-only": [SystemMessage("math: extract the function name from def f(): pass")],
    }[kind]


def _li(kind: str) -> list[ChatMessage]:
    image = ChatMessage(role="user", blocks=[ImageBlock(url=IMAGE)])
    return {
        "image-only": [image],
        "image+system": [ChatMessage(role="system", content="Describe what you see."), image],
        "empty user": [ChatMessage(role="user", blocks=[TextBlock(text="")])],
        "system-only": [ChatMessage(role="system", content="math: extract the function name from def f(): pass")],
    }[kind]


@pytest.mark.parametrize("kind", ["image-only", "image+system", "empty user"])
def test_a_turn_without_user_text_is_refused_and_charges_nothing_in_both_integrations(kind):
    ledger = Ledger(1.0)
    lc = SCOPERouter(candidates=make_candidates(), router=router(), ledger=ledger)
    with pytest.raises(InvalidQueryError, match="no user text to route on"):
        lc.invoke(_lc(kind))
    li = SCOPELLM(router(), {m: NamedLLM(name=m) for m in MODELS}, ledger=ledger)
    with pytest.raises(InvalidQueryError, match="no user text to route on"):
        li.chat(_li(kind))
    assert ledger.calls == 0 and ledger.spent == 0


def test_a_system_only_chat_is_routed_on_its_system_prompt_in_both_integrations():
    lc = SCOPERouter(candidates=make_candidates(), router=router()).invoke(_lc("system-only"))
    li = SCOPELLM(router(), {m: NamedLLM(name=m) for m in MODELS}).chat(_li("system-only"))
    for scope in (lc.response_metadata["scope"], li.additional_kwargs["scope"]):
        assert scope["routing_text"] == "math: extract the function name from def f(): pass"
        assert scope["routing_text_source"].startswith("no user turn")
