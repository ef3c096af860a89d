"""`SCOPEMiddleware`: route every model call of a `create_agent` agent, step by step.

    agent = create_agent(model=cheap_model, tools=[...], middleware=[SCOPEMiddleware(router, candidates)])
    agent.invoke({"messages": [...]}, context={"scope_ledger": Ledger(0.05), "max_cost": 0.002})

Each model call (every step of the tool loop) gets its own decision from the core router, on the
query text of the conversation so far (`messages.query_text`), then runs through
``handler(request.override(model=chosen))``; if the chosen candidate raises, the next-ranked one
that fits the budget is tried. The knob and the ledger come from the run's ``context`` (a dict,
dataclass or pydantic object with the keys of `langchain_scope.config`), else from the run's
``configurable``, else from this middleware's own settings. The AI message carries
``response_metadata["scope"]`` and ``["model_name"]`` as with `SCOPERouter`.

Each step holds the expected cost of the whole request it sends (system prompt, messages, tool
schemas). Under an ``"end"``-mode budget, a step the budget cannot pay for answers with a final
message (no tool calls), so the agent run ends gracefully, like LangChain's
``ModelCallLimitMiddleware(exit_behavior="end")``; under ``"raise"`` it stops with `BudgetExceeded`.

Unlike LangChain's ``ModelRouterMiddleware`` (one classification per run, by text instructions),
this decides per model call, from predicted accuracy and cost, under a numeric budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain.agents.middleware.types import (
    AgentMiddleware,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.errors import GraphBubbleUp

from langchain_scope import config as cfg
from langchain_scope.budget import prompt_token_count, stop_message
from langchain_scope.messages import DEFAULT_CONTEXT_CHARS, query_text, usage_of
from langchain_scope.tools import tool_capable
from langchain_scope.validation import check_pairing
from scope_shared.budget.nesting import LedgerLike
from scope_shared.calls import DEFAULT_FALLBACK_ON, CallRecord, FallbackOn, RoutedCall, Usage, check_fallback_on
from scope_shared.calls import ends_gracefully
from scope_shared.calls.attempts import atry_in_order, try_in_order
from scope_shared.errors import BudgetExceeded
from scope_shared.routing.router import Router


def _run_configurable() -> Mapping[str, Any] | None:
    try:
        from langgraph.config import get_config

        return get_config().get("configurable")
    except RuntimeError:  # not inside a graph run
        return None


def _ai_message(response: Any) -> AIMessage | None:
    if isinstance(response, ExtendedModelResponse):
        response = response.model_response
    if isinstance(response, AIMessage):
        return response
    if isinstance(response, ModelResponse):
        for message in reversed(response.result):
            if isinstance(message, AIMessage):
                return message
    return None


def _annotate(response: Any, model: str, record: CallRecord, skipped: dict[str, str]) -> Any:
    """The response with the routed AI message's metadata filled in."""
    if isinstance(response, ExtendedModelResponse):
        return ExtendedModelResponse(
            model_response=_annotate(response.model_response, model, record, skipped), command=response.command
        )
    target = _ai_message(response)
    if target is None:
        return response
    meta = {**record.metadata(), "skipped": dict(skipped),
            "candidate_model_name": target.response_metadata.get("model_name")}
    new = target.model_copy(
        update={"response_metadata": {**target.response_metadata, "model_name": model, "scope": meta}}
    )
    if isinstance(response, AIMessage):
        return new
    result = [new if m is target else m for m in response.result]
    return ModelResponse(result=result, structured_response=response.structured_response)


class SCOPEMiddleware(AgentMiddleware):
    """Route each model call of an agent to the candidate SCOPE picks.

    Args:
        router: the core `scope_shared.Router`.
        candidates: card name -> chat model (every card needs one, and every model a card).
        max_cost / tradeoff / min_accuracy / alpha: default knob (at most one).
        ledger: default budget for runs that bring none.
        context_chars: conversation kept around the last human turn in the query text.
        fallback_on: candidate errors that move a step on to the next candidate (default any
            ``Exception``); others propagate at once.
    """

    def __init__(
        self,
        router: Router,
        candidates: Mapping[str, BaseChatModel],
        *,
        max_cost: float | None = None,
        tradeoff: float | None = None,
        min_accuracy: float | None = None,
        alpha: float | None = None,
        ledger: LedgerLike | None = None,
        context_chars: int = DEFAULT_CONTEXT_CHARS,
        fallback_on: FallbackOn = DEFAULT_FALLBACK_ON,
    ) -> None:
        super().__init__()
        check_pairing(candidates, router)
        self.router = router
        self.candidates = dict(candidates)
        self.defaults = {"max_cost": max_cost, "tradeoff": tradeoff, "min_accuracy": min_accuracy, "alpha": alpha}
        cfg.field_knob(**self.defaults)
        self.ledger = ledger
        self.context_chars = context_chars
        self.fallback_on = check_fallback_on(fallback_on)

    def _messages(self, request: ModelRequest) -> list[BaseMessage]:
        system = [request.system_message] if request.system_message is not None else []
        return [*system, *request.messages]

    def _plan(self, request: ModelRequest) -> tuple[RoutedCall, dict[str, str], list[BaseMessage]]:
        runtime = getattr(request, "runtime", None)
        settings = cfg.resolve(
            cfg.as_mapping(getattr(runtime, "context", None)),
            _run_configurable(),
            self.defaults,
            default_ledger=self.ledger,
        )
        names = list(self.candidates)
        skipped: dict[str, str] = {}
        if request.tools:
            names, skipped = tool_capable(names, self.candidates)
        messages = self._messages(request)
        call = RoutedCall.plan(
            self.router, query_text(messages, self.context_chars), knob=settings.knob,
            ledger=settings.ledger, candidates=names,
            prompt_tokens=prompt_token_count(messages, request.tools or (), self.router.count_tokens),
            fallback_on=self.fallback_on,
        )
        return call, skipped, messages

    def _usage(self, messages: list[BaseMessage]) -> Callable[[str, Any], Usage]:
        return lambda _m, response: usage_of(_ai_message(response), messages, self.router.count_tokens)

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
        """Decide for this step, then call the chosen candidate (falling back down the ranking)."""
        try:
            call, skipped, messages = self._plan(request)
            model, response, record = try_in_order(
                call,
                lambda m: handler(request.override(model=self.candidates[m])),
                self._usage(messages),
                reraise=(GraphBubbleUp,),
            )
        except BudgetExceeded as exc:
            return _end_of_run(exc)
        return _annotate(response, model, record, skipped)

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]
    ) -> Any:
        """Async `wrap_model_call`."""
        try:
            call, skipped, messages = self._plan(request)
            model, response, record = await atry_in_order(
                call,
                lambda m: handler(request.override(model=self.candidates[m])),
                self._usage(messages),
                reraise=(GraphBubbleUp,),
            )
        except BudgetExceeded as exc:
            return _end_of_run(exc)
        return _annotate(response, model, record, skipped)


def _end_of_run(stop: BudgetExceeded) -> ModelResponse:
    """An "end"-mode stop as the step's answer: a final message with no tool calls ends the agent."""
    if not ends_gracefully(stop):
        raise stop
    return ModelResponse(result=[stop_message(stop)])
