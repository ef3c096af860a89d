"""Tool binding that is applied to whichever candidate the router picks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import Runnable

from langchain_scope.candidates import call_through, can_bind_tools
from scope_shared.cards import ModelCard
from scope_shared.errors import NoToolCapableCandidate

#: the bound keyword argument that carries a `ToolBinding` from `bind_tools` to the call
TOOLS_KEY = "scope_tools"
CANNOT_BIND_TOOLS = "cannot bind tools"


@dataclass(frozen=True)
class ToolBinding:
    """What `bind_tools` was given, kept as is so each candidate formats the tools its own way."""

    tools: tuple[Any, ...]
    tool_choice: Any = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, model: Runnable) -> Runnable:
        extra = dict(self.kwargs)
        if self.tool_choice is not None:
            extra["tool_choice"] = self.tool_choice
        return call_through(model, "bind_tools", list(self.tools), **extra)

    def capable(
        self, names: Sequence[str], candidates: Mapping[str, Runnable], cards: Mapping[str, ModelCard]
    ) -> tuple[list[str], dict[str, str]]:
        return tool_capable(names, candidates, cards)


def tool_capable(
    names: Sequence[str], candidates: Mapping[str, Runnable], cards: Mapping[str, ModelCard] | None = None
) -> tuple[list[str], dict[str, str]]:
    """Split candidate names into those that can bind tools (the card's ``supports_tools``, else the
    model's class) and those skipped (with why)."""
    cards = cards or {}
    skipped = {n: CANNOT_BIND_TOOLS for n in names if not can_bind_tools(candidates[n], cards.get(n))}
    keep = [n for n in names if n not in skipped]
    if not keep:
        raise NoToolCapableCandidate(
            f"tools are bound but no candidate can bind tools ({', '.join(names)} cannot)"
        )
    return keep, skipped
