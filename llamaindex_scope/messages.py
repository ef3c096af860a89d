"""From LlamaIndex messages and responses to what a call is charged: the text sent, the text
produced, the token usage the provider reported (the routing text is `routing_text`)."""

from __future__ import annotations

from collections.abc import Sequence

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse

from llamaindex_scope.routing_text import message_text
from scope_shared.calls import Usage
from scope_shared.tokens import reported_tokens

__all__ = ["message_text", "messages_text", "reported_usage", "response_text"]


def messages_text(messages: Sequence[ChatMessage]) -> str:
    """All the text a chat sends (what its input tokens are counted from)."""
    return "\n".join(message_text(m) for m in messages)



def response_text(response: ChatResponse | CompletionResponse) -> str:
    """The text a response produced (a chat's message, a completion's text)."""
    if isinstance(response, ChatResponse):
        return message_text(response.message)
    return response.text or ""


def reported_usage(response: ChatResponse | CompletionResponse) -> Usage | None:
    """Token counts the provider reported, if any (`scope_shared.tokens.reported_tokens`).

    Looked for in the response's ``additional_kwargs`` (where LlamaIndex's OpenAI-style
    integrations put them), its message's ``additional_kwargs``, its ``raw`` (and ``raw.usage``).
    """
    message_kwargs = response.message.additional_kwargs if isinstance(response, ChatResponse) else None
    pair = reported_tokens(response.additional_kwargs, message_kwargs, response.raw)
    return None if pair is None else Usage(input_tokens=pair[0], output_tokens=pair[1], counted=False)
