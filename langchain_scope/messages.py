"""From LangChain messages to what the router needs: the query text, and token usage.

Query-text rule (what SCOPE embeds and looks up anchors for):

1. The *core* is the text of the last human turn (the user's current request). If the input
   has no human turn, the last message with any text stands in for it.
2. Before it, the most recent earlier turns (system prompt included), as ``role: text`` lines,
   are prepended, newest first kept, while they fit in ``context_chars`` characters (older turns
   are dropped whole; only the nearest one is cut if it alone is too long): enough to resolve
   "and the second one?" without drowning the request in a long chat.
3. After it, the steps an agent has taken since that turn (its tool calls and the tool results)
   are appended, again within ``context_chars``: each step of a tool loop is routed on what it
   has in hand, not only on the original request.
4. A single human message is routed on exactly its text (so a question already in the history
   finds itself as an anchor). Input with no text at all raises `InvalidQueryError`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from scope_shared.calls import Usage
from scope_shared.errors import InvalidQueryError
from scope_shared.tokens import TokenCounter

#: characters of conversation kept on each side of the last human turn
DEFAULT_CONTEXT_CHARS = 1000


def message_text(message: BaseMessage) -> str:
    """The text of a message; an AI message's tool calls are written out as ``name(args)``."""
    text = str(message.text or "").strip()
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = " ".join(f"{c['name']}({json.dumps(c.get('args', {}), sort_keys=True)})" for c in message.tool_calls)
        text = f"{text} {calls}".strip()
    return text


def _line(message: BaseMessage) -> str:
    return f"{message.type}: {message_text(message)}"


def _fit(lines: list[str], budget: int) -> list[str]:
    """The newest lines (last in ``lines``) whose total length fits ``budget``.

    Older lines are dropped whole; only the newest one is cut (to its last ``budget`` characters)
    when it alone is too long.
    """
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        if used + len(line) <= budget:
            kept.append(line)
            used += len(line)
        elif not kept and budget > 0:
            kept.append(line[-budget:])
            break
        else:
            break
    return list(reversed(kept))


def query_text(messages: Sequence[BaseMessage], context_chars: int = DEFAULT_CONTEXT_CHARS) -> str:
    """The text SCOPE routes on, by the rule in this module's docstring."""
    with_text = [i for i, m in enumerate(messages) if message_text(m)]
    if not with_text:
        raise InvalidQueryError(
            f"the input ({len(messages)} message(s)) holds no text to route on; "
            "send at least one message with text content"
        )
    humans = [i for i in with_text if isinstance(messages[i], HumanMessage)]
    core = humans[-1] if humans else with_text[-1]
    before = [_line(messages[i]) for i in with_text if i < core]
    after = [_line(messages[i]) for i in with_text if i > core]
    parts = _fit(before, context_chars) + [message_text(messages[core])] + _fit(after, context_chars)
    return "\n".join(parts)


def count_input_tokens(messages: Sequence[BaseMessage], counter: TokenCounter) -> int:
    """Input tokens of a call, counted locally (used when a provider reports no usage)."""
    return sum(counter(message_text(m)) for m in messages if message_text(m))


def usage_of(message: BaseMessage | None, inputs: Sequence[BaseMessage], counter: TokenCounter) -> Usage:
    """The tokens a call used: the provider's ``usage_metadata``, else counted with ``counter``."""
    usage = getattr(message, "usage_metadata", None)
    if usage and ("input_tokens" in usage or "output_tokens" in usage):
        return Usage(float(usage.get("input_tokens", 0)), float(usage.get("output_tokens", 0)), counted=False)
    out_text = message_text(message) if message is not None else ""
    return Usage(
        float(count_input_tokens(inputs, counter)),
        float(counter(out_text) if out_text else 0),
        counted=True,
    )
