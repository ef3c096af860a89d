"""``SCOPERouter.with_structured_output``: route each call, then let the chosen candidate structure it its own way.

Every method a candidate supports (``function_calling``, ``json_schema``, ``json_mode``, ``strict``,
``include_raw``, provider-specific keywords) is passed to that candidate's own
``with_structured_output``, so ``method="json_schema"`` stays JSON schema. Candidates that can do
neither tools nor structured output are skipped (``scope["skipped"]``). The call is routed,
budgeted, traced and falls back exactly as a plain call does; a candidate whose output does not
parse (``include_raw=False``) counts as failed and the next one is tried. Cost is settled from the candidate's own
chat-model run (its ``usage_metadata``, else counted). With ``include_raw=True`` the raw message
carries ``response_metadata["scope"]`` (the call id for feedback); the routing run's trace
metadata has it either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig

from langchain_scope import tracing
from langchain_scope.candidates import call_through, can_bind_tools, inner_chat_model
from langchain_scope.tools import TOOLS_KEY
from scope_shared.calls import stop_reason
from scope_shared.calls.attempts import afirst_answer, first_answer
from scope_shared.calls.streams import StreamHooks, astream_in_order, keep_last, stream_in_order
from scope_shared.cards import ModelCard
from scope_shared.errors import NoCandidatesError

if TYPE_CHECKING:
    from langchain_scope.planner import Plan, Planner


class PlannedChatModel(Protocol):
    """What `RoutedStructuredOutput` needs of the router it wraps: a chat model with a `Planner`."""

    planner: Planner

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str: ...

CANNOT_STRUCTURE = "cannot produce structured output"


class NoStructuredOutputCandidate(NoCandidatesError):
    """``with_structured_output`` was asked for, but no candidate can produce structured output."""


def can_structure(candidate: Any, card: ModelCard | None = None) -> bool:
    """Whether a candidate has its own ``with_structured_output`` or can bind tools (the base way)."""
    model = inner_chat_model(candidate)
    own = model is None or type(model).with_structured_output is not BaseChatModel.with_structured_output
    return own or can_bind_tools(candidate, card)


@dataclass(frozen=True)
class StructuredBinding:
    """What ``with_structured_output`` was given, applied to whichever candidate is chosen."""

    schema: Any
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, candidate: Runnable) -> Runnable:
        return call_through(candidate, "with_structured_output", self.schema, **self.kwargs)

    def capable(
        self, names: Sequence[str], candidates: Mapping[str, Runnable], cards: Mapping[str, ModelCard]
    ) -> tuple[list[str], dict[str, str]]:
        skipped = {n: CANNOT_STRUCTURE for n in names if not can_structure(candidates[n], cards.get(n))}
        keep = [n for n in names if n not in skipped]
        if not keep:
            raise NoStructuredOutputCandidate(f"no candidate can produce structured output ({', '.join(names)})")
        return keep, skipped


class _LastReply(BaseCallbackHandler):
    """Keeps the message of the last chat-model run that ended under it (for the real token usage)."""

    def __init__(self) -> None:
        self.message: BaseMessage | None = None

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        gens = getattr(response, "generations", None)
        if gens and gens[-1]:
            self.message = getattr(gens[-1][-1], "message", None)


def _with_catcher(config: RunnableConfig) -> tuple[RunnableConfig, _LastReply]:
    catcher = _LastReply()
    manager = config["callbacks"].copy()  # type: ignore[union-attr]
    manager.add_handler(catcher, inherit=True)
    return {**config, "callbacks": manager}, catcher


class RoutedStructuredOutput(Runnable[LanguageModelInput, Any]):
    """The Runnable ``SCOPERouter.with_structured_output(...)`` returns (see the module docstring)."""

    def __init__(self, router: PlannedChatModel, schema: Any, kwargs: Mapping[str, Any]) -> None:
        self.router = router
        self.binding = StructuredBinding(schema, dict(kwargs))

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        return self.router.get_name(suffix, name=name)

    def _settle(self, plan: Any, model: str, output: Any, catcher: _LastReply) -> Any:
        raw = output.get("raw") if isinstance(output, dict) else None
        message = raw if isinstance(raw, AIMessage) else catcher.message
        record = plan.call.succeeded(model, plan.usage(model, message))
        if isinstance(raw, AIMessage):
            output = {**output, "raw": plan.finish(raw, model, record)}
        return output

    def _settle_stopped(self, plan: Any, model: str, partial: Any, catcher: _LastReply, why: BaseException) -> None:
        """A structured stream that stopped after some output: charge what was produced (flagged)."""
        message = catcher.message or AIMessage(content=partial if isinstance(partial, str) else repr(partial))
        plan.call.succeeded(model, plan.usage(model, message), stopped=stop_reason(why))

    def _hooks(self, plan: Any, catcher: _LastReply) -> StreamHooks[Any]:
        """Structured streams hand out whole objects: the latest is the answer so far."""
        return StreamHooks(
            finish=lambda m, held, _acc: self._settle(plan, m, held, catcher),
            stopped=lambda m, acc, why: self._settle_stopped(plan, m, acc, catcher, why),
            add=keep_last,
        )

    def _start(self, input: LanguageModelInput, config: RunnableConfig | None) -> tuple[Any, Any, RunnableConfig, _LastReply]:
        plan, config = self.router.planner.plan(input, config, {TOOLS_KEY: self.binding})
        run, child = tracing.start_run(self.router, config, plan.messages, plan.call.record)
        child, catcher = _with_catcher(child)
        return plan, run, child, catcher

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        plan, run, child, catcher = self._start(input, config)
        try:
            model, out = first_answer(plan.call, lambda m: self._target(plan, m).invoke(plan.messages, child, **kwargs))
            out = self._settle(plan, model, out, catcher)
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        tracing.end_run(run, plan.call.record, out)
        return out

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        plan, config = self.router.planner.plan(input, config, {TOOLS_KEY: self.binding})
        run, child = await tracing.astart_run(self.router, config, plan.messages, plan.call.record)
        child, catcher = _with_catcher(child)
        try:
            model, out = await afirst_answer(plan.call, lambda m: self._target(plan, m).ainvoke(plan.messages, child, **kwargs))
            out = self._settle(plan, model, out, catcher)
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await tracing.aend_run(run, plan.call.record, out)
        return out

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        plan, run, child, catcher = self._start(input, config)
        last: Any = None
        try:
            for last in stream_in_order(
                plan.call,
                lambda m: self._target(plan, m).stream(plan.messages, child, **kwargs),
                self._hooks(plan, catcher),
            ):
                yield last
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        tracing.end_run(run, plan.call.record, last)

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        plan, config = self.router.planner.plan(input, config, {TOOLS_KEY: self.binding})
        run, child = await tracing.astart_run(self.router, config, plan.messages, plan.call.record)
        child, catcher = _with_catcher(child)
        last: Any = None
        chunks = astream_in_order(
            plan.call,
            lambda m: self._target(plan, m).astream(plan.messages, child, **kwargs),
            self._hooks(plan, catcher),
        )
        try:
            async with aclosing(chunks):  # closing this stream settles the routed one at once
                async for last in chunks:
                    yield last
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await tracing.aend_run(run, plan.call.record, last)

    def _target(self, plan: Plan, model: str) -> Runnable:
        return self.router.planner.target(model, plan.binding)

