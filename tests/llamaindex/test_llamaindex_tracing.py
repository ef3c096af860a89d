"""SCOPELLM in LlamaIndex's instrumentation: one LLM span per call (the child that answered, with its
own LLM events), nested in SCOPELLM's span, which carries the routing and cost events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures_llamaindex import collector, named_llms  # noqa: F401  (fixture)
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler

from llamaindex_scope import SCOPELLM

QUESTION = "code: how do I reverse a list in python?"  # "mid" answers it
LLM_STARTS = ("LLMChatStartEvent", "LLMCompletionStartEvent")
LLM_ENDS = ("LLMChatEndEvent", "LLMCompletionEndEvent")


@pytest.fixture
def spans() -> Iterator[SimpleSpanHandler]:
    """A span handler on LlamaIndex's root dispatcher, removed after the test."""
    root = get_dispatcher()
    handler = SimpleSpanHandler()
    root.add_span_handler(handler)
    try:
        yield handler
    finally:
        root.span_handlers.remove(handler)


def _chat() -> list[ChatMessage]:
    return [ChatMessage(role="user", content=QUESTION)]


def _sync(llm: SCOPELLM, how: str) -> Any:
    if how == "chat":
        return llm.chat(_chat())
    if how == "complete":
        return llm.complete(QUESTION)
    if how == "stream_chat":
        return list(llm.stream_chat(_chat()))[-1]
    return list(llm.stream_complete(QUESTION))[-1]


async def _async(llm: SCOPELLM, how: str) -> Any:
    if how == "chat":
        return await llm.achat(_chat())
    if how == "complete":
        return await llm.acomplete(QUESTION)
    if how == "stream_chat":
        return [r async for r in await llm.astream_chat(_chat())][-1]
    return [r async for r in await llm.astream_complete(QUESTION)][-1]


HOWS = ["chat", "complete", "stream_chat", "stream_complete"]


def _parent(spans: SimpleSpanHandler, span_id: str) -> str | None:
    (span,) = [s for s in [*spans.completed_spans, *spans.dropped_spans, *spans.open_spans.values()] if s.id_ == span_id]
    return span.parent_id


def _check(
    collector: Any, spans: SimpleSpanHandler, response: Any, answered: str, failed: tuple[str, ...] = (),
    exactly_one: bool = False,
) -> None:
    """SCOPELLM sends no LLM events of its own; under its span (which holds the routing and cost
    events) the LLM spans are the children it tried: the failed ones, then the one that answered."""
    starts = [e for e in collector.events if e.class_name() in LLM_STARTS]
    ends = {e.span_id for e in collector.events if e.class_name() in LLM_ENDS}
    assert not [e for e in starts if e.model_dict.get("class_name") == "SCOPELLM"]
    (routed,) = collector.of("SCOPERoutingEvent")
    (cost,) = collector.of("SCOPECostEvent")
    assert routed.span_id is not None and cost.span_id == routed.span_id and cost.model == answered
    tried = [e for e in starts if _parent(spans, e.span_id) == routed.span_id]
    if not failed and exactly_one:
        assert len(starts) == 1
    # (a stand-in built on CustomLLM sends its own nested LLM events: chat through complete, an
    # async stream through the sync one; each names the child, never SCOPELLM)
    names = [e.model_dict["model_name"] for e in tried]
    assert [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n] == [*failed, answered]
    assert all(e.model_dict["model_name"] in (*failed, answered) for e in starts)
    assert any(e.span_id in ends for e in tried if e.model_dict["model_name"] == answered)
    assert response.additional_kwargs["scope"]["model"] == answered


@pytest.mark.parametrize("how", HOWS)
def test_one_llm_span_per_call_naming_the_model_that_answered(router, collector, spans, how):
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9)
    response = _sync(llm, how)
    _check(collector, spans, response, "mid", exactly_one=how in ("complete", "stream_complete"))


@pytest.mark.parametrize("how", HOWS)
async def test_one_llm_span_per_async_call(router, collector, spans, how):
    llm = SCOPELLM(router, named_llms(), min_accuracy=0.9)
    response = await _async(llm, how)
    _check(collector, spans, response, "mid")


@pytest.mark.parametrize("how", ["chat", "stream_complete"])
def test_after_a_fallback_the_answering_span_names_the_fallback(router, collector, spans, how):
    llm = SCOPELLM(router, named_llms(mid={"fail": True}), min_accuracy=0.9)
    response = _sync(llm, how)
    answered = response.additional_kwargs["scope"]["model"]
    assert answered != "mid"
    _check(collector, spans, response, answered, failed=("mid",))
