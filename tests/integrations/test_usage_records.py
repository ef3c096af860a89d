"""One reader of provider usage records (`scope_shared.tokens.reported_tokens`) serves the
onboarding clients and both integrations; these pin what it accepts and that each place uses it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scope_shared.tokens import approx_token_count, reported_tokens, token_pair


@pytest.mark.parametrize(
    ("record", "pair"),
    [
        ({"input_tokens": 12, "output_tokens": 34, "total_tokens": 46}, (12.0, 34.0)),
        ({"prompt_tokens": 5, "completion_tokens": 7}, (5.0, 7.0)),
        (SimpleNamespace(prompt_tokens=3, completion_tokens=4.5), (3.0, 4.5)),
        ({"input_tokens": 10}, None),  # half a record: counted instead
        ({"input_tokens": True, "output_tokens": 3}, None),  # a bool is not a count
        ({"input_tokens": float("nan"), "output_tokens": 3}, None),
        ({"input_tokens": "12", "output_tokens": "3"}, None),
        ({}, None),
    ],
)
def test_token_pair(record, pair):
    assert token_pair(record) == pair


def test_reported_tokens_looks_in_members_and_takes_the_first_source():
    assert reported_tokens(None, {"other": 1}, {"usage": {"prompt_tokens": 2, "completion_tokens": 3}}) == (2.0, 3.0)
    assert reported_tokens({"token_usage": {"input_tokens": 1, "output_tokens": 1}}) == (1.0, 1.0)
    assert reported_tokens(SimpleNamespace(usage=SimpleNamespace(input_tokens=8, output_tokens=9))) == (8.0, 9.0)
    first = {"input_tokens": 1, "output_tokens": 2}
    assert reported_tokens(first, {"input_tokens": 100, "output_tokens": 200}) == (1.0, 2.0)
    assert reported_tokens(None, {}, "text") is None


def test_langchain_usage_of_reads_reported_then_counts():
    from langchain_core.messages import AIMessage, HumanMessage

    from langchain_scope.messages import usage_of

    sent = [HumanMessage(content="what is two plus two")]
    reported = AIMessage(content="four", usage_metadata={"input_tokens": 12, "output_tokens": 34, "total_tokens": 46})
    usage = usage_of(reported, sent, approx_token_count)
    assert (usage.input_tokens, usage.output_tokens, usage.counted) == (12.0, 34.0, False)
    counted = usage_of(AIMessage(content="four"), sent, approx_token_count)
    assert counted.counted and counted.output_tokens == approx_token_count("four")


def test_llamaindex_reported_usage_reads_raw_and_kwargs():
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
    )

    from llamaindex_scope.messages import reported_usage

    chat = ChatResponse(message=ChatMessage(role="assistant", content="x"),
                        raw={"usage": {"prompt_tokens": 6, "completion_tokens": 2}})
    usage = reported_usage(chat)
    assert usage is not None and (usage.input_tokens, usage.output_tokens, usage.counted) == (6.0, 2.0, False)
    done = CompletionResponse(text="x", additional_kwargs={"prompt_tokens": 4, "completion_tokens": 1})
    assert reported_usage(done) is not None and reported_usage(done).output_tokens == 1.0
    assert reported_usage(CompletionResponse(text="x")) is None


def test_onboarding_clients_read_the_same_records():
    from scope_shared.onboarding.clients import as_client

    client = as_client(lambda prompt: ("four", {"token_usage": {"input_tokens": 9, "output_tokens": 1}}))
    reply = client("what is two plus two")
    assert (reply.input_tokens, reply.output_tokens, reply.counted) == (9.0, 1.0, False)
    half = as_client(lambda prompt: {"text": "four", "input_tokens": 9})("what is two plus two")
    assert half.counted and half.output_tokens == approx_token_count("four")
