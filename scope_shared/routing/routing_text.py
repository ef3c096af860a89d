"""The routing text: what a decision is made on (and what feedback stores), taken from a call's input.

By default it is the user's question, not the system prompt, retrieved context, output schemas or
framework scaffolding. Integrations turn their messages into `Turn` objects and ask a
`RoutingTextRule`; the rule, on a chat:

1. A turn marked as the routing text (its ``scope_routing_text`` is ``True``: its own text; or a
   string: that text) wins.
2. System turns are dropped.
3. The question is the latest user turn that is not pure scaffolding, after known templates are
   recognised (`scaffolds`): the query inside a RAG prompt, a JSON schema block removed, the
   "refine with this new context" turn skipped for the question before it.
4. An agent step (the input ends with tool results) is routed on its current need: the task (the
   question above) plus the latest tool turn(s), up to ``tool_chars`` characters of them.
5. ``earlier_chars`` > 0 keeps that many characters of the user/assistant turns before the question
   (newest first), for follow-ups like "and the second one?"; off by default.
6. Turns without text, one rule in both integrations:
   - a chat with no user turn at all is a task written as a system (or tool) prompt, e.g. a
     one-message system template: its last such turn stands in, scaffolding removed, flagged in
     the record's source (``"no user turn: ..."``);
   - a chat whose user turns hold no text (images, audio or other non-text content only), with or
     without a system prompt, or with no text anywhere, or only assistant turns, raises
     `InvalidQueryError` naming what it holds, before any model is called or charged: the question
     is in content the router cannot read, and routing on the system prompt would choose for
     another task. Say what to route on explicitly (below) to route such a call.

Saying what to route on, most specific first (`choose`): a per-call value (LangChain's
``configurable={"scope_routing_text": ...}``, LlamaIndex's ``routing_text=`` keyword), a marked
message, a ``with route_on("..."):`` block, the component's ``routing_text=`` callable, then the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from scope_shared.errors import InvalidQueryError
from scope_shared.query import validate_query
from scope_shared.routing.scaffolds import ScaffoldSet

#: the message marker and the per-call (``configurable``) key naming the routing text
ROUTING_TEXT_KEY = "scope_routing_text"
#: characters of an agent's latest tool results appended to its task
DEFAULT_TOOL_CHARS = 1000

Role = Literal["system", "user", "assistant", "tool"]
_override: ContextVar[str | None] = ContextVar("scope_routing_text", default=None)
M = TypeVar("M")


@dataclass(frozen=True)
class Turn:
    """One message, framework-neutral: its role, its text, and the routing text it was marked with."""

    role: Role
    text: str
    marked: str | None = None


@dataclass(frozen=True)
class RoutingText:
    """The text to route on, and where it came from (for metadata and debugging)."""

    text: str
    source: str


@dataclass(frozen=True)
class RoutingTextRule:
    """The default rule (module docstring) over a set of known templates."""

    scaffolds: ScaffoldSet = field(default_factory=ScaffoldSet)
    earlier_chars: int = 0
    tool_chars: int = DEFAULT_TOOL_CHARS

    def __post_init__(self) -> None:
        if self.earlier_chars < 0 or self.tool_chars < 0:
            raise InvalidQueryError("earlier_chars and tool_chars must be >= 0")

    def of_prompt(self, prompt: str) -> RoutingText:
        """The routing text of a single prompt (a completion call)."""
        ex = self.scaffolds.extract(validate_query(prompt))
        text = ex.text if ex.text and ex.text.strip() else prompt
        return RoutingText(text, f"template {ex.template}" if ex.template else "prompt")

    def of_turns(self, turns: Sequence[Turn]) -> RoutingText:
        """The routing text of a chat (rules 1-6 of the module docstring)."""
        marked = marked_in(turns)
        if marked:
            return RoutingText(validate_query(marked), "marked message")
        live = [(i, t) for i, t in enumerate(turns) if t.text.strip()]
        if not any(t.role == "user" for _, t in live) and (
            any(t.role == "user" for t in turns) or all(t.role == "assistant" for _, t in live)
        ):
            raise no_user_text(turns)
        core, text, source = self._question(live)
        if core is None:
            return RoutingText(text, source)
        tools = self._latest_tools(turns, core)
        if tools and self.tool_chars:
            text = f"{text}\n\n{tools[: self.tool_chars].rstrip()}"
            source += " + latest tool turn"
        earlier = self._earlier(turns, core)
        if earlier:
            text = f"{earlier}\n{text}"
            source += " + earlier turns"
        return RoutingText(text, source)

    def _question(self, live: list[tuple[int, Turn]]) -> tuple[int | None, str, str]:
        for i, t in reversed(live):
            if t.role != "user":
                continue
            ex = self.scaffolds.extract(t.text)
            if ex.text is None:  # a scaffolding-only turn: the question is further up
                continue
            if ex.text.strip():
                return i, ex.text.strip(), f"template {ex.template}" if ex.template else "question"
        stand_in = [(i, t) for i, t in live if t.role != "assistant"]
        i, t = stand_in[-1]
        ex = self.scaffolds.extract(t.text)
        text = ex.text.strip() if ex.text and ex.text.strip() else t.text.strip()
        return None, text, f"no user turn: the last {t.role} turn"

    @staticmethod
    def _latest_tools(turns: Sequence[Turn], core: int) -> str:
        """The text of the tool turns that end the input (after the question), oldest first."""
        tail: list[str] = []
        for t in reversed(turns[core + 1 :]):
            if t.role != "tool":
                break
            if t.text.strip():
                tail.append(t.text.strip())
        return "\n".join(reversed(tail))

    def _earlier(self, turns: Sequence[Turn], core: int) -> str:
        if not self.earlier_chars:
            return ""
        lines = [f"{t.role}: {t.text.strip()}" for t in turns[:core] if t.role in ("user", "assistant") and t.text.strip()]
        kept: list[str] = []
        used = 0
        for line in reversed(lines):
            if used + len(line) > self.earlier_chars:
                if not kept:
                    kept.append(line[-self.earlier_chars :])
                break
            kept.append(line)
            used += len(line)
        return "\n".join(reversed(kept))


def no_user_text(turns: Sequence[Turn]) -> InvalidQueryError:
    """The error for a chat with no user text to route on (rule 6), saying what it holds."""
    counts: dict[str, int] = {}
    for t in turns:
        key = t.role if t.text.strip() else f"{t.role} without text"
        counts[key] = counts.get(key, 0) + 1
    held = ", ".join(f"{n} {role}" for role, n in counts.items()) or "no messages"
    return InvalidQueryError(
        f"no user text to route on (the input holds {held} message(s)); a call is routed on the "
        f"user's question, which the router cannot read in non-text content. Send the question as "
        f"user text, or say what to route on ({ROUTING_TEXT_KEY!r} in the call's config, a marked "
        "message, routing_text=, or a route_on block)"
    )


# ---------------------------------------------------------------------- saying what to route on
@contextmanager
def route_on(text: str) -> Iterator[str]:
    """Route every call made inside the block on ``text`` (unless a call says otherwise).

    Context-local (threads and asyncio tasks each see their own), so concurrent pipelines don't mix.
    """
    token = _override.set(validate_query(text))
    try:
        yield text
    finally:
        _override.reset(token)


def current_override() -> str | None:
    """The text of the innermost `route_on` block in force, if any."""
    return _override.get()


def marked_text(value: object, own_text: str) -> str | None:
    """What a message's ``scope_routing_text`` marker says: ``True`` -> its own text, a string -> that."""
    if value is True:
        return own_text or None
    if isinstance(value, str) and value.strip():
        return value
    if value in (None, False):
        return None
    raise InvalidQueryError(f"{ROUTING_TEXT_KEY!r} must be True or a non-empty string, got {value!r}")


def without_markers(messages: Sequence[M]) -> list[M]:
    """Messages (pydantic, with ``additional_kwargs``: LangChain's or LlamaIndex's) with any
    ``scope_routing_text`` marker removed: what the candidate model is sent."""
    out = []
    for m in messages:
        kwargs = getattr(m, "additional_kwargs", None) or {}
        if ROUTING_TEXT_KEY in kwargs:
            m = m.model_copy(update={"additional_kwargs": {k: v for k, v in kwargs.items() if k != ROUTING_TEXT_KEY}})  # type: ignore[attr-defined]
        out.append(m)
    return out


def mark_routing_text(message: M, text: str | bool = True) -> M:
    """A copy of ``message`` marked as the routing text (``True``: its own text; a string: that text)."""
    kwargs = getattr(message, "additional_kwargs", None) or {}
    return message.model_copy(update={"additional_kwargs": {**kwargs, ROUTING_TEXT_KEY: text}})  # type: ignore[attr-defined]


def marked_in(turns: Sequence[Turn]) -> str | None:
    """The routing text of the last marked turn, if any."""
    return next((t.marked for t in reversed(turns) if t.marked), None)


def choose(
    default: Callable[[], RoutingText],
    *,
    explicit: object = None,
    marked: str | None = None,
    custom: Callable[[], str | None] | None = None,
) -> RoutingText:
    """The routing text of one call, by the precedence in the module docstring.

    ``default`` (the rule) and ``custom`` (the component's callable; ``None`` from it means "use
    the rule") are only called when needed.
    """
    if explicit is not None:
        if not isinstance(explicit, str):
            raise InvalidQueryError(f"{ROUTING_TEXT_KEY} must be a string, got {type(explicit).__name__}")
        return RoutingText(validate_query(explicit), "given for the call")
    if marked:
        return RoutingText(validate_query(marked), "marked message")
    block = current_override()
    if block is not None:
        return RoutingText(block, "route_on block")
    if custom is not None:
        text = custom()
        if text is not None:
            if not isinstance(text, str):
                raise InvalidQueryError(f"the routing_text callable returned {type(text).__name__}, not a string")
            return RoutingText(validate_query(text), "routing_text callable")
    return default()
