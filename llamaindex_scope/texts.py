"""Reading LlamaIndex messages and responses: the question to route on, the text to count, the usage reported.

Pure helpers, no routing logic: what to embed for a chat or a prompt, and the real token counts a
child LLM reported (else the caller counts them with the router's token counter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, MessageRole

from scope_shared.calls import Usage

# LlamaIndex's default question-answering and refine prompts end with the user's query; a RAG
# prompt is mostly retrieved context, so route on the query itself when the pattern is there.
_QUERY_PATTERNS = (
    re.compile(r"\bQuery:\s*(?P<q>.+?)\s*\n\s*Answer:\s*$", re.DOTALL),
    re.compile(r"The original query is as follows:\s*(?P<q>.+?)\s*\n", re.DOTALL),
    re.compile(r"\bQuestion:\s*(?P<q>.+?)\s*\n\s*(?:Answer|SQLQuery):\s*$", re.DOTALL),
)


def query_from_prompt(text: str) -> str:
    """The user's query inside a LlamaIndex QA/refine prompt, else the text unchanged."""
    for pattern in _QUERY_PATTERNS:
        m = pattern.search(text)
        if m and m.group("q").strip():
            return m.group("q").strip()
    return text


def message_text(message: ChatMessage) -> str:
    """The text of a message, with any tool calls it carries written out (for counting tokens)."""
    parts = [message.content or ""]
    for block in getattr(message, "blocks", []) or []:
        name = getattr(block, "tool_name", None)
        if name is not None:
            parts.append(f"{name}({getattr(block, 'tool_kwargs', '')})")
    calls = message.additional_kwargs.get("tool_calls") if message.additional_kwargs else None
    if calls:
        parts.append(str(calls))
    return "\n".join(p for p in parts if p)


def messages_text(messages: Sequence[ChatMessage]) -> str:
    """All the text a chat sends (what its input tokens are counted from)."""
    return "\n".join(message_text(m) for m in messages)


def routing_text_of_messages(messages: Sequence[ChatMessage]) -> str:
    """What to route a chat on: the last user message (its query, if it is a QA prompt)."""
    for m in reversed(messages):
        if m.role == MessageRole.USER and (m.content or "").strip():
            return query_from_prompt(m.content or "")
    return query_from_prompt(messages_text(messages))


def response_text(response: ChatResponse | CompletionResponse) -> str:
    """The text a response produced (a chat's message, a completion's text)."""
    if isinstance(response, ChatResponse):
        return message_text(response.message)
    return response.text or ""


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _pair(obj: Any) -> tuple[float, float] | None:
    for i_key, o_key in (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens")):
        i, o = _get(obj, i_key), _get(obj, o_key)
        if isinstance(i, (int, float)) and isinstance(o, (int, float)) and not isinstance(i, bool):
            return float(i), float(o)
    return None


def reported_usage(response: ChatResponse | CompletionResponse) -> Usage | None:
    """Token counts the provider reported, if any.

    Looked for as ``prompt_tokens``/``completion_tokens`` or ``input_tokens``/``output_tokens`` in
    the response's ``additional_kwargs`` (where LlamaIndex's OpenAI-style integrations put them),
    its message's ``additional_kwargs``, its ``raw`` and ``raw.usage``.
    """
    message_kwargs = response.message.additional_kwargs if isinstance(response, ChatResponse) else None
    for source in (response.additional_kwargs, message_kwargs, response.raw, _get(response.raw, "usage")):
        if source is None:
            continue
        pair = _pair(source)
        if pair is not None:
            return Usage(input_tokens=pair[0], output_tokens=pair[1], counted=False)
    return None
