"""The routing text of a LlamaIndex call: messages to `Turn` objects, the rule, and the ways to say it.

The rule is `scope_shared.routing.routing_text` (the user's question, not system prompts, retrieved
context, schemas or scaffolding; an agent step on its task plus the latest tool turn) over
LlamaIndex's own templates (`llamaindex_scope.templates`) and any the user adds, with the text
retrievers returned earlier in the same query treated as context (`llamaindex_scope.retrieved`).
To say what to route on, most specific first: a call's ``routing_text="..."`` keyword; a message
marked ``additional_kwargs={"scope_routing_text": True}`` (its own text) or a string (see
`mark_routing_text`); a ``with route_on("..."):`` block; ``SCOPELLM(..., routing_text=fn)``.

The same names as `langchain_scope.routing_text`: `default_rule`, `turns_of`, `message_text`,
`routing_text_of`, `query_text`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole

from llamaindex_scope.templates import llamaindex_scaffolds, scaffolds_from_prompt
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

__all__ = [
    "RoutingTextFn",
    "default_rule",
    "mark_routing_text",  # the core's, re-exported as llamaindex_scope's
    "message_text",
    "query_text",
    "routing_text_of",
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


def routing_text_of(
    source: str | Sequence[ChatMessage],
    rule: RoutingTextRule,
    *,
    explicit: object = None,
    custom: RoutingTextFn | None = None,
    retrieved: Sequence[str] = (),
) -> RoutingText:
    """The routing text of one call (a prompt or a chat), with the overrides in precedence order:
    ``explicit`` (the call's ``routing_text=``), a marked message, a ``route_on`` block, ``custom``
    (the component's callable), then the rule; ``retrieved``: texts retrieved in the same query."""
    fn = None if custom is None else (lambda: custom(source))
    turns = transcript_turns(source) if isinstance(source, str) else turns_of(source)
    if turns is None:
        return choose(lambda: rule.of_prompt(str(source), retrieved), explicit=explicit, custom=fn)
    return choose(lambda: rule.of_turns(turns, retrieved), explicit=explicit, marked=marked_in(turns), custom=fn)


def query_text(source: str | Sequence[ChatMessage], rule: RoutingTextRule | None = None) -> str:
    """The text SCOPE routes a prompt or a chat on by default (the question inside LlamaIndex's
    templates and hand-written prompts; a plain prompt as it is)."""
    return routing_text_of(source, rule or default_rule()).text


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
