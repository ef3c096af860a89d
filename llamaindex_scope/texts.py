"""Reading LlamaIndex messages and responses: the question to route on, the text to count, the usage reported.

The routing text is the core rule (`scope_shared.routing.routing_text`) over LlamaIndex's own
templates (`llamaindex_scope.templates`); a message can be marked with
``additional_kwargs={"scope_routing_text": True}`` (or a string) to say what to route on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
)

from llamaindex_scope.templates import llamaindex_scaffolds, scaffolds_from_prompt
from scope_shared.calls import Usage
from scope_shared.routing.routing_text import (
    ROUTING_TEXT_KEY,
    RoutingText,
    RoutingTextRule,
    Turn,
    choose,
    mark_routing_text,
    marked_in,
    marked_text,
    without_markers,
)
from scope_shared.tokens import reported_tokens

__all__ = [
    "RoutingTextFn",
    "default_rule",
    "mark_routing_text",  # the core's, re-exported as llamaindex_scope's
    "message_text",
    "messages_text",
    "query_from_prompt",
    "reported_usage",
    "response_text",
    "routing_text_for",
    "routing_text_of_messages",
    "transcript_turns",
    "turns_of",
    "without_markers",  # the core's, re-exported for llamaindex_scope.llm
]

#: a component's own say in what to route on: given the prompt (completions) or the messages (chats)
RoutingTextFn = Callable[[str | Sequence[ChatMessage]], str | None]

_ROLES = {
    MessageRole.USER: "user", MessageRole.SYSTEM: "system", MessageRole.DEVELOPER: "system",
    MessageRole.TOOL: "tool", MessageRole.FUNCTION: "tool",
}
_OBSERVATION = "Observation:"  # a ReAct agent's tool result, sent as a user turn
# a chat flattened into one prompt by LlamaIndex's `messages_to_prompt` ("role: content" turns, then "assistant: ")
_TRANSCRIPT_TURN = re.compile(r"^({}): ".format("|".join(r.value for r in MessageRole)), re.MULTILINE)


def default_rule(templates: Sequence[Any] = ()) -> RoutingTextRule:
    """The routing-text rule over LlamaIndex's own templates (plus ``templates``, the user's own)."""
    extra = [sc for t in templates for sc in scaffolds_from_prompt(t)]
    return RoutingTextRule(llamaindex_scaffolds() + extra if extra else llamaindex_scaffolds())


def routing_text_for(
    source: str | Sequence[ChatMessage],
    rule: RoutingTextRule,
    explicit: object = None,
    custom: RoutingTextFn | None = None,
) -> RoutingText:
    """The routing text of one call (a prompt or a chat), with the overrides in precedence order."""
    fn = None if custom is None else (lambda: custom(source))
    turns = transcript_turns(source) if isinstance(source, str) else turns_of(source)
    if turns is None:
        return choose(lambda: rule.of_prompt(str(source)), explicit=explicit, custom=fn)
    return choose(lambda: rule.of_turns(turns), explicit=explicit, marked=marked_in(turns), custom=fn)


def query_from_prompt(text: str, rule: RoutingTextRule | None = None) -> str:
    """The user's question inside a LlamaIndex prompt (QA, refine, summarize, selector, ...), else the text."""
    return (rule or default_rule()).of_prompt(text).text


def turns_of(messages: Sequence[ChatMessage]) -> list[Turn]:
    """LlamaIndex chat messages as framework-neutral turns (a ReAct observation counts as a tool turn)."""
    turns: list[Turn] = []
    for m in messages:
        text = message_text(m)
        role = _ROLES.get(m.role, "assistant")
        if role == "user" and text.lstrip().startswith(_OBSERVATION) and turns and turns[-1].role == "assistant":
            role = "tool"
        turns.append(Turn(role, text, marked_text((m.additional_kwargs or {}).get(ROUTING_TEXT_KEY), text)))  # type: ignore[arg-type]
    return turns


def transcript_turns(prompt: str) -> list[Turn] | None:
    """The turns of a chat that LlamaIndex flattened into a prompt (a completion-only LLM asked to
    chat, e.g. by a structured-output program), or None if ``prompt`` is not such a transcript."""
    if not prompt.startswith(tuple(f"{r.value}: " for r in MessageRole)) or not prompt.rstrip().endswith("assistant:"):
        return None
    starts = [m for m in _TRANSCRIPT_TURN.finditer(prompt)]
    messages = [
        ChatMessage(role=m.group(1), content=prompt[m.end() : nxt.start() if nxt else len(prompt)].strip())
        for m, nxt in zip(starts, [*starts[1:], None])
    ]
    return turns_of(messages[:-1] if not messages[-1].content else messages)


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


def routing_text_of_messages(messages: Sequence[ChatMessage], rule: RoutingTextRule | None = None) -> str:
    """What to route a chat on by default: the question (`scope_shared.routing.routing_text`)."""
    return (rule or default_rule()).of_turns(turns_of(messages)).text


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
