"""`SCOPEMiddleware`: route every model call of a `create_agent` agent, step by step.

    agent = create_agent(model=cheap_model, tools=[...], middleware=[SCOPEMiddleware(router, candidates)])
    agent.invoke({"messages": [...]}, context={"scope_ledger": Ledger(0.05), "max_cost": 0.002})

Each model call (every step of the tool loop) gets its own decision from the core router, on the
query text of the conversation so far (`messages.query_text`), then runs through
``handler(request.override(model=chosen))``; if the chosen candidate raises, the next-ranked one
that fits the budget is tried. The knob and the ledger come from the run's ``context`` (a dict,
dataclass or pydantic object with the keys of `langchain_scope.config`), else from the run's
``configurable``, else from this middleware's own settings. The AI message carries
``response_metadata["scope"]`` as with `SCOPERouter` (``model_name`` stays the provider's);
``middleware.record_feedback(message, correct)`` stores the outcome.

With ``ModelFallbackMiddleware``: put it *before* this middleware (outside it),
``middleware=[ModelFallbackMiddleware(backup), SCOPEMiddleware(router, candidates)]``. SCOPE falls
back down its own ranking first; when every candidate failed, the fallback middleware retries with
its model and SCOPE lets that request through unrouted (``scope["routed"] is False``, nothing
charged), so the answer is never labelled with a candidate that did not give it. (In the other
order the fallback middleware would swallow a candidate's error inside SCOPE's attempt, and SCOPE
could not tell which model answered.)

Each step holds the expected cost of the whole request it sends (system prompt, messages, tool
schemas). Under an ``"end"``-mode budget, a step the budget cannot pay for answers with a final
message (no tool calls), so the agent run ends gracefully, like LangChain's
``ModelCallLimitMiddleware(exit_behavior="end")``; under ``"raise"`` it stops with `BudgetExceeded`.

Unlike LangChain's ``ModelRouterMiddleware`` (one classification per run, by text instructions),
this decides per model call, from predicted accuracy and cost, under a numeric budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
import threading
from collections import OrderedDict
from typing import Any
from uuid import UUID

from langchain.agents.middleware.types import (
    AgentMiddleware,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langchain_core.runnables import Runnable
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.errors import GraphBubbleUp

from langchain_scope import config as cfg
from langchain_scope.budget import ended, prompt_token_count
from langchain_scope.feedback import record_feedback
from langchain_scope.messages import usage_of
from langchain_scope.routing_text import RoutingTextFn, langchain_rule, routing_text_of, without_markers
from langchain_scope.tools import tool_capable
from langchain_scope.validation import check_pairing
from scope_shared.arguments import check_keywords
from scope_shared.budget.nesting import LedgerLike
from scope_shared.budget.settings import Settings
from scope_shared.calls import DEFAULT_FALLBACK_ON, CallRecord, FallbackOn, RoutedCall, Usage, check_fallback_on
from scope_shared.calls.attempts import atry_in_order, try_in_order
from scope_shared.errors import AllCandidatesFailed, BudgetExceeded
from scope_shared.routing.router import Router
from scope_shared.routing.routing_text import DEFAULT_TOOL_CHARS


#: the keywords `SCOPEMiddleware` takes
_KEYWORDS = ("router", "candidates", "max_cost", "tradeoff", "min_accuracy", "accuracy_margin", "alpha", "ledger",
             "routing_text", "templates", "context_chars", "tool_chars", "fallback_on")


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


def _annotate(response: Any, fallback_name: str | None, meta: dict[str, Any]) -> Any:
    """The response with its AI message's ``response_metadata["scope"] = meta`` (``model_name``
    stays the provider's; ``fallback_name`` fills it when the provider gave none)."""
    if isinstance(response, ExtendedModelResponse):
        return ExtendedModelResponse(model_response=_annotate(response.model_response, fallback_name, meta), command=response.command)
    target = _ai_message(response)
    if target is None:
        return response
    names = {"model_name": fallback_name} if fallback_name else {}
    new = target.model_copy(update={"response_metadata": {**names, **target.response_metadata, "scope": meta}})
    if isinstance(response, AIMessage):
        return new
    result = [new if m is target else m for m in response.result]
    return ModelResponse(result=result, structured_response=response.structured_response)


def _routed_meta(record: CallRecord, skipped: dict[str, str]) -> dict[str, Any]:
    return {**record.metadata(), "skipped": dict(skipped)}


class SCOPEMiddleware(AgentMiddleware):
    """Route each model call of an agent to the candidate SCOPE picks.

    Args:
        router: the core `scope_shared.Router`.
        candidates: card name -> chat model (every card needs one, and every model a card).
        max_cost / tradeoff / min_accuracy / accuracy_margin / alpha: this middleware's knob (at
            most one); a ``scope_budget`` block overrides it, a run's ``context``/``configurable``
            overrides both (`scope_shared.budget.settings`).
        ledger: default budget for runs that bring none.
        routing_text / templates / context_chars / tool_chars: what each step is routed on, as for
            `SCOPERouter` (default: the task, plus the latest tool results on a tool step).
        fallback_on: candidate errors that move a step on to the next candidate (default any
            ``Exception``); others propagate at once.
    """

    def __init__(
        self,
        router: Router,
        candidates: Mapping[str, Runnable],
        *,
        max_cost: float | None = None,
        tradeoff: float | None = None,
        min_accuracy: float | None = None,
        accuracy_margin: float | None = None,
        alpha: float | None = None,
        ledger: LedgerLike | None = None,
        routing_text: RoutingTextFn | None = None,
        templates: Sequence[Any] = (),
        context_chars: int = 0,
        tool_chars: int = DEFAULT_TOOL_CHARS,
        fallback_on: FallbackOn = DEFAULT_FALLBACK_ON,
        **unknown: Any,
    ) -> None:
        check_keywords(unknown, _KEYWORDS, type(self).__name__)
        super().__init__()
        check_pairing(candidates, router)
        self.router = router
        self.candidates = dict(candidates)
        # what this middleware was built with, validated once
        self.built = Settings.read(
            max_cost=max_cost, tradeoff=tradeoff, min_accuracy=min_accuracy,
            accuracy_margin=accuracy_margin, alpha=alpha, ledger=ledger,
        )
        self.ledger = self.built.ledger
        self.fallback_on = check_fallback_on(fallback_on)
        self.routing_text = routing_text
        self.rule = langchain_rule(context_chars, tool_chars, templates)
        # steps whose every candidate failed, by id of their messages (an outer fallback re-sends them)
        self._exhausted: OrderedDict[int, tuple[Any, CallRecord]] = OrderedDict()
        self._exhausted_lock = threading.Lock()

    def _messages(self, request: ModelRequest) -> list[BaseMessage]:
        system = [request.system_message] if request.system_message is not None else []
        return [*system, *request.messages]

    def _plan(self, request: ModelRequest) -> tuple[RoutedCall, dict[str, str], list[BaseMessage], ModelRequest]:
        runtime = getattr(request, "runtime", None)
        context, configurable = cfg.as_mapping(getattr(runtime, "context", None)), _run_configurable()
        settings = cfg.settings_of_call({"configurable": configurable}, context, self.built)
        names = list(self.candidates)
        skipped: dict[str, str] = {}
        if request.tools:
            names, skipped = tool_capable(names, self.candidates, self.router.cards)
        messages = self._messages(request)
        routed = routing_text_of(messages, self.rule, {**(configurable or {}), **context}, self.routing_text)
        clean = without_markers(request.messages)
        system = [request.system_message] if request.system_message is not None else []
        call = RoutedCall.plan(
            self.router, routed.text, settings, candidates=names,
            prompt_tokens=prompt_token_count([*system, *clean], request.tools or (), self.router.count_tokens),
            fallback_on=self.fallback_on,
        )
        call.record.query_source = routed.source
        if any(a is not b for a, b in zip(clean, request.messages)):
            request = request.override(messages=clean)
        return call, skipped, messages, request

    def _usage(self, messages: list[BaseMessage]) -> Callable[[str, Any], Usage]:
        return lambda _m, response: usage_of(_ai_message(response), messages, self.router.count_tokens)

    def _passthrough(self, request: ModelRequest) -> dict[str, Any] | None:
        """The unrouted label for a request an outer middleware re-sent with its own model after
        every candidate failed (same messages, a model that is not a candidate); else None."""
        if any(request.model is c for c in self.candidates.values()):
            return None
        with self._exhausted_lock:
            failed = self._exhausted.get(id(request.messages))
            if failed is None or failed[0] is not request.messages:
                return None
            del self._exhausted[id(request.messages)]
        record = failed[1]
        return {"call_id": record.call_id, "routed": False, "model": None, "chosen": record.decision.model,
                "failed": [{"model": a.model, "error": a.error} for a in record.failed],
                "explanation": "every candidate failed; the model an outer middleware chose answered (not charged)"}

    def _remember_failure(self, request: ModelRequest, call: RoutedCall) -> None:
        """Remember a step where every candidate failed (its messages, kept alive so the id stays theirs)."""
        with self._exhausted_lock:
            self._exhausted[id(request.messages)] = (request.messages, call.record)
            while len(self._exhausted) > 64:
                self._exhausted.popitem(last=False)

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
        """Decide for this step, then call the chosen candidate (falling back down the ranking)."""
        label = self._passthrough(request)
        if label is not None:
            return _annotate(handler(request), None, label)
        try:
            call, skipped, messages, routed = self._plan(request)
            model, response, record = try_in_order(
                call,
                lambda m: handler(routed.override(model=self.candidates[m])),
                self._usage(messages),
                reraise=(GraphBubbleUp,),
            )
        except AllCandidatesFailed:
            self._remember_failure(request, call)
            raise
        except BudgetExceeded as exc:
            return _end_of_run(exc)
        return _annotate(response, model, _routed_meta(record, skipped))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]
    ) -> Any:
        """Async `wrap_model_call`."""
        label = self._passthrough(request)
        if label is not None:
            return _annotate(await handler(request), None, label)
        try:
            call, skipped, messages, routed = self._plan(request)
            model, response, record = await atry_in_order(
                call,
                lambda m: handler(routed.override(model=self.candidates[m])),
                self._usage(messages),
                reraise=(GraphBubbleUp,),
            )
        except AllCandidatesFailed:
            self._remember_failure(request, call)
            raise
        except BudgetExceeded as exc:
            return _end_of_run(exc)
        return _annotate(response, model, _routed_meta(record, skipped))

    def record_feedback(self, call: str | UUID | CallRecord | BaseMessage, correct: float) -> int:
        """Store a routed step's real outcome (by its AI message, call id or record); feedback on the
        same step again replaces the earlier one."""
        return record_feedback(self.router, call, correct)



def _end_of_run(stop: BudgetExceeded) -> ModelResponse:
    """An "end"-mode stop as the step's answer: a final message with no tool calls ends the agent."""
    return ModelResponse(result=[ended(stop)])
