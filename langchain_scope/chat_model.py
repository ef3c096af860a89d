"""`SCOPERouter`: a LangChain chat model that sends each call to the candidate SCOPE picks.

    router = SCOPERouter.from_defaults(candidates={"cheap": m1, "strong": m2}, cards=cards, history=h)
    chain = prompt | router | StrOutputParser()
    chain.with_config(configurable={"max_cost": 0.001, "scope_ledger": Ledger(0.05)}).invoke(...)

Per call: build the query text (`messages.query_text`), read the knob/ledger (`config`), ask the
core for a ranked decision, open a routing run (`tracing`), call the best candidate that fits the
budget, fall back down the ranking when one raises (`scope_shared.calls.attempts`), and return the
candidate's own message with ``response_metadata["scope"]`` (the call's record) and
``response_metadata["model_name"]`` (the routed candidate's name).

Budgets: a call holds the expected cost of the whole prompt it sends (every message, tool schemas)
and settles the real cost; a stream stopped early (``break``, ``close()``, a cancelled task) or
failing part-way is charged what it produced, flagged ``partial``. Under an ``"end"``-mode budget a
call that cannot be paid answers with a final message instead of raising (so an agent ends).
``fallback_on`` says which candidate errors move on to the next candidate (``with_fallbacks``'
``exceptions_to_handle``).

The router delegates rather than generating itself, so the candidates' own settings govern a call
(their cache, rate limiter, temperature, API keys). ``temperature``/``max_tokens``/``timeout``/
``max_retries``/``api_key`` are accepted (LangChain's standard parameters) and reported to tracers,
but not pushed into the candidates; ``stop`` is passed to the chosen candidate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.runnables.config import get_config_list, get_executor_for_config
from langchain_core.runnables.utils import gather_with_concurrency
from pydantic import Field, SecretStr

from langchain_scope import config as cfg
from langchain_scope import tracing
from langchain_scope.budget import prompt_token_count, stop_message
from langchain_scope.messages import DEFAULT_CONTEXT_CHARS, query_text, usage_of
from langchain_scope.tools import TOOLS_KEY, ToolBinding, tool_capable
from langchain_scope.validation import check_pairing
from scope_shared.budget.nesting import LedgerLike, check_ledger
from scope_shared.calls import DEFAULT_FALLBACK_ON, CallRecord, RoutedCall, ends_gracefully, stop_reason
from scope_shared.calls.attempts import atry_in_order, try_in_order
from scope_shared.errors import BudgetExceeded, ScopeError, UnknownModelError
from scope_shared.routing.router import Router


@dataclass
class _Plan:
    """One call, decided but not yet made."""

    messages: list[BaseMessage]
    call: RoutedCall
    binding: ToolBinding | None
    kwargs: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)


class SCOPERouter(BaseChatModel):
    """A chat model over candidate chat models; each call goes to the one SCOPE picks.

    Args:
        candidates: name -> chat model; every name needs a card in the router (and vice versa).
        router: the core `scope_shared.Router` (cards, history, estimator, embedder). Or pass
            ``cards=`` and ``history=`` (and optionally ``embedder=``, ``estimator=``) instead.
        max_cost / tradeoff / min_accuracy / alpha: this router's knob (at most one); a call's
            ``configurable`` overrides it; unset, the core router's default knob applies.
        ledger: a budget every call of this router draws from unless a call brings its own
            (``configurable["scope_ledger"]``, an agent run's ``context``, a ``scope_budget`` block); a
            ledger, or a ``postgresql://`` URL of a shared one.
        context_chars: conversation kept around the last human turn in the query text.
        fallback_on: candidate errors that move the call on to the next candidate (default any
            ``Exception``); others propagate at once, as the provider raised them.

    The router, ledger and candidates are ordinary (excluded) model fields, not private
    attributes, so ``configurable_fields``/``configurable_alternatives`` keep them when they rebuild
    the model.
    """

    candidates: dict[str, BaseChatModel]
    router: Router = Field(exclude=True)
    max_cost: float | None = None
    tradeoff: float | None = None
    min_accuracy: float | None = None
    alpha: float | None = None
    ledger: LedgerLike | None = Field(default=None, exclude=True)
    context_chars: int = DEFAULT_CONTEXT_CHARS
    fallback_on: tuple[type[BaseException], ...] = Field(default=DEFAULT_FALLBACK_ON, exclude=True)
    model_name: str = "scope-router"
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    stop: list[str] | None = None
    max_retries: int | None = None
    api_key: SecretStr | None = None
    streaming: bool = False

    def __init__(self, **data: Any) -> None:
        if data.get("router") is None and ("cards" in data or "history" in data):
            data["router"] = Router(
                data.pop("cards", None) or [],
                data.pop("history"),
                estimator=data.pop("estimator", None),
                embedder=data.pop("embedder", None),
            )
        if data.get("ledger") is not None:
            data["ledger"] = check_ledger(data["ledger"])  # a Ledger, or a postgresql:// URL
        check_pairing(data.get("candidates"), data.get("router"))
        super().__init__(**data)
        self._field_layer()  # validates: at most one knob, in range

    @classmethod
    def from_defaults(
        cls,
        candidates: Mapping[str, BaseChatModel],
        cards: Sequence[Any],
        history: Any,
        *,
        embedder: Any = None,
        estimator: Any = None,
        default_knob: Any = None,
        token_counter: Any = None,
        **kwargs: Any,
    ) -> "SCOPERouter":
        """Build the core router from cards and a history, then the chat model over it."""
        router = Router(
            cards, history, estimator=estimator, embedder=embedder, default_knob=default_knob,
            token_counter=token_counter,
        )
        return cls(candidates=dict(candidates), router=router, **kwargs)

    # ------------------------------------------------------------------ LangChain plumbing
    @property
    def _llm_type(self) -> str:
        return "scope-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "candidates": list(self.candidates)}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="scope", ls_model_name=kwargs.get("model") or self.model_name, ls_model_type="chat"
        )
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; each call binds them to the chosen candidate (tool-less ones are skipped)."""
        tool_capable(list(self.candidates), self.candidates)  # fail now if none can
        return self.bind(**{TOOLS_KEY: ToolBinding(tuple(tools), tool_choice, dict(kwargs))})

    # ------------------------------------------------------------------ one call
    def _field_layer(self) -> dict[str, Any]:
        layer = {"max_cost": self.max_cost, "tradeoff": self.tradeoff,
                 "min_accuracy": self.min_accuracy, "alpha": self.alpha}
        cfg.field_knob(**layer)
        return layer

    def _plan(self, messages: list[BaseMessage], config: RunnableConfig, kwargs: dict[str, Any]) -> _Plan:
        kwargs = dict(kwargs)
        binding = kwargs.pop(TOOLS_KEY, None)
        forced = kwargs.pop("model", None)
        settings = cfg.resolve(
            cfg.run_context(config), config.get("configurable"), self._field_layer(), default_ledger=self.ledger
        )
        names = list(self.candidates)
        if forced is not None:
            if forced not in self.candidates:
                raise UnknownModelError(f"model={forced!r} is not a candidate; candidates are {', '.join(names)}")
            names = [forced]
        skipped: dict[str, str] = {}
        if binding is not None:
            names, skipped = tool_capable(names, self.candidates)
        query = query_text(messages, self.context_chars)
        run_id = config.get("run_id")
        call = RoutedCall.plan(
            self.router, query, knob=settings.knob, ledger=settings.ledger, candidates=names,
            call_id=None if run_id is None else str(run_id),
            prompt_tokens=prompt_token_count(messages, binding.tools if binding else (), self.router.count_tokens),
            fallback_on=self.fallback_on,
        )
        return _Plan(messages, call, binding, kwargs, skipped)

    def _prepare(self, input: LanguageModelInput, config: RunnableConfig | None, kwargs: dict[str, Any]) -> tuple[_Plan, RunnableConfig]:
        config = ensure_config(config)
        return self._plan(self._convert_input(input).to_messages(), config, kwargs), config

    def _target(self, model: str, binding: ToolBinding | None) -> Runnable:
        candidate = self.candidates[model]
        return candidate if binding is None else binding.apply(candidate)

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else (self.stop or None)

    def _usage(self, plan: _Plan):  # type: ignore[no-untyped-def]
        return lambda _model, message: usage_of(message, plan.messages, self.router.count_tokens)

    def _finish(self, message: BaseMessage, model: str, record: CallRecord, plan: _Plan) -> AIMessage:
        meta = record.metadata()
        meta["skipped"] = dict(plan.skipped)
        meta["candidate_model_name"] = message.response_metadata.get("model_name")
        return message.model_copy(  # type: ignore[return-value]
            update={"response_metadata": {**message.response_metadata, "model_name": model, "scope": meta}}
        )

    # ------------------------------------------------------------------ invoke
    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> AIMessage:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            return _ended(exc)
        run, child = tracing.start_run(self, config, plan.messages, plan.call.record)
        try:
            model, message, record = try_in_order(
                plan.call,
                lambda m: self._target(m, plan.binding).invoke(plan.messages, child, stop=self._stop(stop), **plan.kwargs),
                self._usage(plan),
            )
            out = self._finish(message, model, record, plan)
        except BaseException as exc:
            if not _graceful(exc):
                run.on_chain_error(exc)
                raise
            out = _ended(exc)
        run.on_chain_end(tracing.outputs(out, plan.call.record))
        return out

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> AIMessage:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            return _ended(exc)
        run, child = await tracing.astart_run(self, config, plan.messages, plan.call.record)
        try:
            model, message, record = await atry_in_order(
                plan.call,
                lambda m: self._target(m, plan.binding).ainvoke(plan.messages, child, stop=self._stop(stop), **plan.kwargs),
                self._usage(plan),
            )
            out = self._finish(message, model, record, plan)
        except BaseException as exc:
            if not _graceful(exc):
                await run.on_chain_error(exc)
                raise
            out = _ended(exc)
        await run.on_chain_end(tracing.outputs(out, plan.call.record))
        return out

    # ------------------------------------------------------------------ stream
    def _strip(self, chunk: AIMessageChunk) -> AIMessageChunk:
        """The candidate's chunk without its ``model_name`` (the last chunk names the routed model)."""
        if "model_name" not in chunk.response_metadata:
            return chunk
        meta = {k: v for k, v in chunk.response_metadata.items() if k != "model_name"}
        return chunk.model_copy(update={"response_metadata": meta})

    def _last_chunk(self, acc: AIMessageChunk | None, model: str, record: CallRecord, plan: _Plan) -> AIMessageChunk:
        final = self._finish(acc or AIMessageChunk(content=""), model, record, plan)
        meta = {"model_name": model, "scope": final.response_metadata["scope"]}
        return AIMessageChunk(content="", id=acc.id if acc is not None else None, response_metadata=meta)

    def _settle_stopped(self, plan: _Plan, model: str, acc: AIMessageChunk, why: BaseException) -> None:
        """A stream that stopped after some chunks: charge what it produced (flagged partial)."""
        plan.call.succeeded(model, self._usage(plan)(model, acc), stopped=stop_reason(why))

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            yield _ended(exc, chunk=True)
            return
        run, child = tracing.start_run(self, config, plan.messages, plan.call.record)
        try:
            for model in plan.call.models_to_try():
                acc: AIMessageChunk | None = None
                source = self._target(model, plan.binding).stream(
                    plan.messages, child, stop=self._stop(stop), **plan.kwargs
                )
                try:
                    for chunk in source:
                        acc = chunk if acc is None else acc + chunk
                        yield self._strip(chunk)
                except BaseException as exc:  # also GeneratorExit: the consumer stopped
                    source.close()  # the candidate's stream too (its connection), right now
                    if acc is not None:  # part of an answer is out: charge it; no switch mid-stream
                        self._settle_stopped(plan, model, acc, exc)
                        raise
                    plan.call.failed(model, exc)
                    if plan.call.moves_on(exc):
                        continue
                    raise
                record = plan.call.succeeded(model, self._usage(plan)(model, acc))
                last = self._last_chunk(acc, model, record, plan)
                yield last
                run.on_chain_end(tracing.outputs(acc + last if acc is not None else last, record))
                return
            raise plan.call.all_failed()
        except BudgetExceeded as exc:  # no candidate could be held (the budget was spent meanwhile)
            if not ends_gracefully(exc):
                run.on_chain_error(exc)
                raise
            ended = _ended(exc, chunk=True)
            yield ended
            run.on_chain_end(tracing.outputs(ended, plan.call.record))
        except BaseException as exc:
            run.on_chain_error(exc)
            raise

    async def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            yield _ended(exc, chunk=True)
            return
        run, child = await tracing.astart_run(self, config, plan.messages, plan.call.record)
        try:
            for model in plan.call.models_to_try():
                acc: AIMessageChunk | None = None
                source = self._target(model, plan.binding).astream(
                    plan.messages, child, stop=self._stop(stop), **plan.kwargs
                )
                try:
                    async for chunk in source:
                        acc = chunk if acc is None else acc + chunk
                        yield self._strip(chunk)
                except BaseException as exc:  # also GeneratorExit (aclose) and CancelledError
                    await source.aclose()  # type: ignore[attr-defined]
                    if acc is not None:
                        self._settle_stopped(plan, model, acc, exc)
                        raise
                    plan.call.failed(model, exc)
                    if plan.call.moves_on(exc):
                        continue
                    raise
                record = plan.call.succeeded(model, self._usage(plan)(model, acc))
                last = self._last_chunk(acc, model, record, plan)
                yield last
                await run.on_chain_end(tracing.outputs(acc + last if acc is not None else last, record))
                return
            raise plan.call.all_failed()
        except BudgetExceeded as exc:
            if not ends_gracefully(exc):
                await run.on_chain_error(exc)
                raise
            ended = _ended(exc, chunk=True)
            yield ended
            await run.on_chain_end(tracing.outputs(ended, plan.call.record))
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise

    # ------------------------------------------------------------------ batch
    def _warm(self, inputs: Sequence[LanguageModelInput]) -> None:
        """Embed every input's query text in one pass (the embedder caches per text)."""
        queries = []
        for item in inputs:
            try:
                queries.append(query_text(self._convert_input(item).to_messages(), self.context_chars))
            except (ScopeError, ValueError, TypeError, NotImplementedError):
                continue  # that item fails on its own, with its own error
        if queries:
            self.router.embed(queries)

    def batch(self, inputs: list[LanguageModelInput], config: Any = None, *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """Route a batch: its query texts are embedded in one pass, then each item is routed.

        With ``return_exceptions``, an item stopped by its budget returns its `BudgetExceeded`
        like any other error (it is not an ``Exception``, so the base class would let it through).
        """
        self._warm(inputs)
        if not return_exceptions or not inputs:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        configs = get_config_list(config, len(inputs))

        def one(item: LanguageModelInput, c: RunnableConfig) -> Any:
            try:
                return self.invoke(item, c, **kwargs)
            except (Exception, BudgetExceeded) as exc:
                return exc

        with get_executor_for_config(configs[0]) as executor:
            return list(executor.map(one, inputs, configs))

    async def abatch(self, inputs: list[LanguageModelInput], config: Any = None, *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """Async `batch` (the one-pass embedding runs in a worker thread)."""
        import asyncio

        await asyncio.to_thread(self._warm, inputs)
        if not return_exceptions or not inputs:
            return await super().abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        configs = get_config_list(config, len(inputs))

        async def one(item: LanguageModelInput, c: RunnableConfig) -> Any:
            try:
                return await self.ainvoke(item, c, **kwargs)
            except (Exception, BudgetExceeded) as exc:
                return exc

        return await gather_with_concurrency(
            configs[0].get("max_concurrency"), *(one(i, c) for i, c in zip(inputs, configs))
        )

    # ------------------------------------------------------------------ generate() path
    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        """Used only by the legacy ``generate()`` path (``invoke`` and friends are overridden)."""
        config = ensure_config()
        inner: RunnableConfig = {"configurable": dict(config.get("configurable", {}))}
        try:
            plan = self._plan(list(messages), config, kwargs)
            model, message, record = try_in_order(
                plan.call,
                lambda m: self._target(m, plan.binding).invoke(plan.messages, inner, stop=self._stop(stop), **plan.kwargs),
                self._usage(plan),
            )
        except BudgetExceeded as exc:
            return ChatResult(generations=[ChatGeneration(message=_ended(exc))])
        return ChatResult(generations=[ChatGeneration(message=self._finish(message, model, record, plan))])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        config = ensure_config()
        inner: RunnableConfig = {"configurable": dict(config.get("configurable", {}))}
        try:
            plan = self._plan(list(messages), config, kwargs)
            model, message, record = await atry_in_order(
                plan.call,
                lambda m: self._target(m, plan.binding).ainvoke(plan.messages, inner, stop=self._stop(stop), **plan.kwargs),
                self._usage(plan),
            )
        except BudgetExceeded as exc:
            return ChatResult(generations=[ChatGeneration(message=_ended(exc))])
        return ChatResult(generations=[ChatGeneration(message=self._finish(message, model, record, plan))])

    # ------------------------------------------------------------------ feedback
    def record_feedback(self, call: str | UUID | CallRecord | BaseMessage, correct: float) -> int:
        """Store a routed call's real outcome in the history (by run id, call id, record or reply)."""
        if isinstance(call, BaseMessage):
            scope = call.response_metadata.get("scope")
            if not scope:
                raise ScopeError("this message was not routed by SCOPE (no response_metadata['scope'])")
            call = scope["call_id"]
        if isinstance(call, UUID):
            call = str(call)
        return self.router.record_feedback(call, correct)


def _graceful(exc: BaseException) -> bool:
    """A budget stop that asks to end the run with a final answer (mode "end")."""
    return isinstance(exc, BudgetExceeded) and ends_gracefully(exc)


def _ended(stop: BudgetExceeded, chunk: bool = False) -> Any:
    """The final answer for an "end"-mode stop; any other stop is raised."""
    if not ends_gracefully(stop):
        raise stop
    return stop_message(stop, chunk=chunk)
