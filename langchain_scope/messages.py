"""From LangChain messages to what the router needs: the routing text (`routing_text`), and token usage."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from langchain_scope.routing_text import message_text, query_text
from scope_shared.calls import Usage
from scope_shared.tokens import TokenCounter, reported_tokens

__all__ = ["count_input_tokens", "message_text", "query_text", "usage_of"]


def count_input_tokens(messages: Sequence[BaseMessage], counter: TokenCounter) -> int:
    """Input tokens of a call, counted locally (used when a provider reports no usage)."""
    return sum(counter(message_text(m)) for m in messages if message_text(m))


def usage_of(message: BaseMessage | None, inputs: Sequence[BaseMessage], counter: TokenCounter) -> Usage:
    """The tokens a call used: the provider's ``usage_metadata`` (read by
    `scope_shared.tokens.reported_tokens`), else counted with ``counter``."""
    reported = reported_tokens(getattr(message, "usage_metadata", None))
    if reported is not None:
        return Usage(reported[0], reported[1], counted=False)
    out_text = message_text(message) if message is not None else ""
    return Usage(
        float(count_input_tokens(inputs, counter)),
        float(counter(out_text) if out_text else 0),
        counted=True,
    )
