"""Budget glue for LangChain: nested budgets in a run's config, the prompt a hold prices, the stop answer.

``chain.with_config(configurable={"scope_ledger": L})`` sets a run's budget, and like every
configurable value the caller's wins: a chain invoked inside a run that has a ledger sees that
ledger instead of its own. `with_budget` *nests* instead: the chain's calls are charged to its
budget and to the run's.

    team = Ledger(1.00, name="team")
    research = with_budget(prompt | llm, Ledger(0.10, name="research"))
    (research | summarise).invoke(x, config={"configurable": {"scope_ledger": team}})
    # every call in research is charged to research and to team
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_scope.config import LEDGER_KEY
from langchain_scope.messages import message_text
from scope_shared.budget.nesting import LedgerLike, check_ledger, nest
from scope_shared.calls import ends_gracefully, prompt_tokens, stop_metadata, stop_text
from scope_shared.errors import BudgetExceeded
from scope_shared.tokens import TokenCounter


def with_budget(runnable: Runnable, ledger: LedgerLike) -> Runnable:
    """``runnable`` with ``ledger`` nested inside whatever budget its run already has."""
    ledger = check_ledger(ledger)  # a ledger, or a postgresql:// URL

    def nested(config: RunnableConfig) -> RunnableConfig:
        outer = (config.get("configurable") or {}).get(LEDGER_KEY)
        return {"configurable": {LEDGER_KEY: nest(ledger, check_ledger(outer, repr(LEDGER_KEY)))}}

    return RunnableBinding(bound=runnable, config_factories=[nested])


def _tool_text(tool: Any) -> str:
    try:
        return json.dumps(convert_to_openai_tool(tool), sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 - an odd tool still costs its repr
        return repr(tool)


def bound_tools(binding: Any) -> tuple[Any, ...]:
    """The schemas a call sends besides its messages: bound tools, or a structured-output schema."""
    if binding is None:
        return ()
    tools = getattr(binding, "tools", None)
    return tuple(tools) if tools is not None else (binding.schema,)


def prompt_token_count(messages: Sequence[BaseMessage], tools: Sequence[Any], counter: TokenCounter) -> int:
    """Input tokens a call sends: every message (and its tool calls) plus every tool schema."""
    return prompt_tokens([message_text(m) for m in messages] + [_tool_text(t) for t in tools], counter)


def stop_message(stop: BudgetExceeded, chunk: bool = False) -> AIMessage:
    """The final answer of a run its ``"end"``-mode budget stopped: no tool calls, so agents end."""
    meta = {"scope": stop_metadata(stop), "finish_reason": "budget_exhausted"}
    cls = AIMessageChunk if chunk else AIMessage
    return cls(content=stop_text(stop), response_metadata=meta)


def ends_run(exc: BaseException) -> bool:
    """Whether ``exc`` is a budget stop that asks to end the run with a final answer (mode "end")."""
    return isinstance(exc, BudgetExceeded) and ends_gracefully(exc)


def ended(stop: BudgetExceeded, chunk: bool = False) -> AIMessage:
    """The final answer for an "end"-mode stop (`stop_message`); any other stop is raised."""
    if not ends_gracefully(stop):
        raise stop
    return stop_message(stop, chunk=chunk)
