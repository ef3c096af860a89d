"""The routing text of a LangChain call: messages to `Turn` objects, the rule, and the ways to say it.

The rule is `scope_shared.routing.routing_text` (the user's question, not system prompts, retrieved
context, schemas or scaffolding; an agent step on its task plus the latest tool turn) over
LangChain's own templates (`langchain_scope.templates`) and any the user adds. To say what to
route on, most specific first:

- ``config={"configurable": {"scope_routing_text": "..."}}`` (or the agent run's ``context``);
- a message marked ``HumanMessage(..., additional_kwargs={"scope_routing_text": True})`` (its own
  text) or ``{"scope_routing_text": "what to route on"}`` (see `mark_routing_text`); the marker is
  removed before the candidate sees the message;
- a ``with route_on("..."):`` block (`scope_shared.routing.routing_text.route_on`);
- ``SCOPERouter(..., routing_text=lambda messages: ...)`` (return ``None`` to fall back to the rule).

Text that a retriever returned earlier in the same run is context, never the question
(`langchain_scope.retrieved`). The same names as `llamaindex_scope.routing_text`: `default_rule`,
`turns_of`, `message_text`, `routing_text_of`, `query_text`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage

from langchain_scope.templates import langchain_scaffolds, scaffolds_from_prompt
from scope_shared.routing.routing_text import (
    DEFAULT_TOOL_CHARS,
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

RoutingTextFn = Callable[[list[BaseMessage]], "str | None"]

_ROLES = {
    "human": "user", "user": "user", "ai": "assistant", "assistant": "assistant",
    "system": "system", "developer": "system", "tool": "tool", "function": "tool",
}


def message_text(message: BaseMessage) -> str:
    """The text of a message; an AI message's tool calls are written out as ``name(args)``."""
    text = str(message.text or "").strip()
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = " ".join(f"{c['name']}({json.dumps(c.get('args', {}), sort_keys=True)})" for c in message.tool_calls)
        text = f"{text} {calls}".strip()
    return text


def _role(message: BaseMessage) -> Any:
    if isinstance(message, ChatMessage):
        return _ROLES.get(message.role.lower(), "user")
    if isinstance(message, SystemMessage):
        return "system"
    return _ROLES.get(message.type, "user")


def turns_of(messages: Sequence[BaseMessage]) -> list[Turn]:
    """LangChain messages as framework-neutral turns (markers read, not removed)."""
    turns = []
    for m in messages:
        text = message_text(m)
        turns.append(Turn(_role(m), text, marked_text(m.additional_kwargs.get(ROUTING_TEXT_KEY), text)))
    return turns


def default_rule(
    context_chars: int = 0, tool_chars: int = DEFAULT_TOOL_CHARS, templates: Sequence[Any] = ()
) -> RoutingTextRule:
    """The rule over LangChain's templates plus ``templates`` (prompt templates or template strings)."""
    extra = [s for t in templates for s in scaffolds_from_prompt(t)]
    scaffolds = langchain_scaffolds() + extra if extra else langchain_scaffolds()
    return RoutingTextRule(scaffolds, earlier_chars=context_chars, tool_chars=tool_chars)


def routing_text_of(
    source: str | Sequence[BaseMessage],
    rule: RoutingTextRule,
    *,
    explicit: object = None,
    custom: RoutingTextFn | None = None,
    retrieved: Sequence[str] = (),
) -> RoutingText:
    """The routing text of one call, with the overrides in precedence order: ``explicit`` (the
    call's ``configurable["scope_routing_text"]``, see `explicit_in`), a marked message, a
    ``route_on`` block, ``custom`` (the component's callable), then the rule; ``retrieved``: texts
    retrievers returned in the same run (`langchain_scope.retrieved.retrieved_texts`)."""
    messages = [HumanMessage(source)] if isinstance(source, str) else list(source)
    turns = turns_of(messages)
    return choose(
        lambda: rule.of_turns(turns, retrieved),
        explicit=explicit,
        marked=marked_in(turns),
        custom=None if custom is None else (lambda: custom(messages)),
    )


def explicit_in(settings: Mapping[str, Any] | None) -> object:
    """The routing text a call's ``configurable`` (or an agent run's context) gives, if any."""
    return (settings or {}).get(ROUTING_TEXT_KEY)


def query_text(
    source: str | Sequence[BaseMessage], context_chars: int = 0, tool_chars: int = DEFAULT_TOOL_CHARS
) -> str:
    """The text SCOPE routes a prompt or ``messages`` on by default (the rule over LangChain's templates)."""
    return routing_text_of(source, default_rule(context_chars, tool_chars)).text


__all__ = [
    "RoutingTextFn",
    "default_rule",
    "explicit_in",
    "mark_routing_text",
    "message_text",
    "query_text",
    "routing_text_of",
    "turns_of",
    "without_markers",
]
