"""`SCOPERouter`: a LangChain chat model that sends each call to the candidate SCOPE picks.

    router = SCOPERouter.from_defaults(candidates={"cheap": m1, "strong": m2}, cards=cards, history=h)
    chain = prompt | router | StrOutputParser()
    chain.with_config(configurable={"max_cost": 0.001, "scope_ledger": Ledger(0.05)}).invoke(...)

Per call: build the query text (`messages.query_text`), read the knob/ledger (`config`), ask the
core for a ranked decision (a `plan.Plan`), open a routing run (`tracing`), call the best candidate
that fits the budget, fall back down the ranking when one raises (`scope_shared.calls.attempts`),
and return the candidate's own message with ``response_metadata["scope"]`` (the call's record) and
``response_metadata["model_name"]`` (the routed candidate's name). The stream paths are in
`langchain_scope.chat_stream`.

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

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable, ensure_config
from langchain_core.runnables.configurable import RunnableConfigurableFields
from langchain_core.runnables.utils import ConfigurableField
from pydantic import Field, PrivateAttr, SecretStr

from langchain_scope import config as cfg
from langchain_scope import tracing
from langchain_scope.batching import abatch_keeping_stops, batch_keeping_stops
from langchain_scope.budget import bound_tools, ended, ends_run, prompt_token_count
from langchain_scope.chat_stream import RoutedStreams
from langchain_scope.feedback import record_feedback
from langchain_scope.plan import Plan
from langchain_scope.routing_text import (
    RoutingTextFn,
    langchain_rule,
    routing_text_of,
    without_markers,
)
from langchain_scope.structured import RoutedStructuredOutput, StructuredBinding
from langchain_scope.tools import TOOLS_KEY, ToolBinding, tool_capable
from langchain_scope.validation import check_pairing
from scope_shared.arguments import check_keywords
from scope_shared.budget.nesting import LedgerLike, check_ledger
from scope_shared.budget.settings import Settings
from scope_shared.calls import DEFAULT_FALLBACK_ON, CallRecord, RoutedCall
from scope_shared.calls.attempts import atry_in_order, try_in_order
from scope_shared.errors import BudgetExceeded, ScopeError, UnknownModelError
from scope_shared.routing.knobs import KNOB_KINDS
from scope_shared.routing.router import Router
from scope_shared.routing.routing_text import DEFAULT_TOOL_CHARS, RoutingTextRule


class SCOPERouter(RoutedStreams, BaseChatModel):
    """A chat model over candidate chat models; each call goes to the one SCOPE picks.

    Args:
        candidates: name -> chat model (or a chat model wrapped by ``bind``/``with_config``/
            ``with_retry``/``with_fallbacks``, or a configurable ``init_chat_model`` model); every
            name needs a card in the router (and vice versa).
        router: the core `scope_shared.Router` (cards, history, estimator, embedder). Or pass
            ``cards=`` and ``history=`` (and optionally ``embedder=``, ``estimator=``) instead.
        max_cost / tradeoff / min_accuracy / accuracy_margin / alpha: this router's knob (at most
            one); a ``scope_budget`` block around a call overrides it, a call's ``configurable``
            overrides both (`scope_shared.budget.settings`); unset, the core router's default knob
            applies. Each is a configurable field whatever the constructor set
            (``configurable_fields(max_cost=...)`` on a router built with ``min_accuracy=``).
        ledger: a budget every call of this router draws from unless a call brings its own
            (``configurable["scope_ledger"]``, an agent run's ``context``, a ``scope_budget`` block); a
            ledger, or a ``postgresql://`` URL of a shared one.
        routing_text: what to route a call on, given its messages (``None`` from it: the default
            rule, `langchain_scope.routing_text`); a call's ``configurable["scope_routing_text"]``
            or a marked message wins over it.
        templates: your own prompt templates (LangChain prompts or template strings) to recognise
            beside LangChain's: a call made from one is routed on its question variable.
        context_chars: characters of earlier user/assistant turns kept before the question
            (default 0: the question alone).
        tool_chars: characters of an agent step's latest tool results kept after its task.
        fallback_on: candidate errors that move the call on to the next candidate (default any
            ``Exception``); others propagate at once, as the provider raised them.

    The router, ledger and candidates are ordinary (excluded) model fields, not private
    attributes, so ``configurable_fields``/``configurable_alternatives`` keep them when they rebuild
    the model. An unknown keyword raises `UnknownArgumentError` naming the closest valid one.
    """

    candidates: dict[str, Any]  # chat models, or Runnables around one (bind/with_retry/configurable)
    router: Router = Field(exclude=True)
    max_cost: float | None = None
    tradeoff: float | None = None
    min_accuracy: float | None = None
    accuracy_margin: float | None = None
    alpha: float | None = None
    ledger: LedgerLike | None = Field(default=None, exclude=True)
    routing_text: RoutingTextFn | None = Field(default=None, exclude=True)
    templates: list[Any] = Field(default_factory=list, exclude=True)
    context_chars: int = 0
    tool_chars: int = DEFAULT_TOOL_CHARS
    fallback_on: tuple[type[BaseException], ...] = Field(default=DEFAULT_FALLBACK_ON, exclude=True)
    model_name: str = "scope-router"
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    stop: list[str] | None = None
    max_retries: int | None = None
    api_key: SecretStr | None = None
    streaming: bool = False

    _built: Settings = PrivateAttr(default_factory=Settings)

    def __init__(self, **data: Any) -> None:
        check_keywords(data, _constructor_keywords(type(self)), type(self).__name__)
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
        # the knob and ledger this router was built with, validated once (at most one knob, in range)
        self._built = Settings.read({k: getattr(self, k) for k in KNOB_KINDS}, ledger=self.ledger)

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
    ) -> SCOPERouter:
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
        tool_capable(list(self.candidates), self.candidates, self.router.cards)  # fail now if none can
        return self.bind(**{TOOLS_KEY: ToolBinding(tuple(tools), tool_choice, dict(kwargs))})

    def with_structured_output(
        self, schema: dict[str, Any] | type, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Each call is routed, then answered by the chosen candidate's own ``with_structured_output``
        with these arguments (every ``method``; see `langchain_scope.structured`)."""
        binding = StructuredBinding(schema, {"include_raw": include_raw, **kwargs})
        binding.capable(list(self.candidates), self.candidates, self.router.cards)  # fail now if none can
        return RoutedStructuredOutput(self, schema, binding.kwargs)

    def configurable_fields(self, **kwargs: Any) -> RunnableSerializable[LanguageModelInput, BaseMessage]:
        """LangChain's ``configurable_fields``; a knob field configured for a call replaces the knob
        the router was built with (rather than clashing with it as a second knob)."""
        checked = super().configurable_fields(**kwargs)  # LangChain's checks of the field names
        return KnobConfigurableFields(default=self, fields=checked.fields)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ one call

    def _plan(self, messages: list[BaseMessage], config: RunnableConfig, kwargs: dict[str, Any]) -> Plan:
        kwargs = dict(kwargs)
        binding = kwargs.pop(TOOLS_KEY, None)
        forced = kwargs.pop("model", None)
        settings = cfg.settings_of_call(config, cfg.run_context(config), self._built)
        names = list(self.candidates)
        if forced is not None:
            if forced not in self.candidates:
                raise UnknownModelError(f"model={forced!r} is not a candidate; candidates are {', '.join(names)}")
            names = [forced]
        skipped: dict[str, str] = {}
        if binding is not None:  # tools or a structured-output schema: only capable candidates compete
            names, skipped = binding.capable(names, self.candidates, self.router.cards)
        routed = routing_text_of(messages, self._rule(), config.get("configurable"), self.routing_text)
        sent = without_markers(messages)
        run_id = config.get("run_id")
        call = RoutedCall.plan(
            self.router, routed.text, settings, candidates=names,
            call_id=None if run_id is None else str(run_id),
            prompt_tokens=prompt_token_count(sent, bound_tools(binding), self.router.count_tokens),
            fallback_on=self.fallback_on,
        )
        call.record.query_source = routed.source
        return Plan(sent, call, binding, kwargs, self.router.count_tokens, skipped)

    def _rule(self) -> RoutingTextRule:
        return langchain_rule(self.context_chars, self.tool_chars, self.templates)

    def _prepare(self, input: LanguageModelInput, config: RunnableConfig | None, kwargs: dict[str, Any]) -> tuple[Plan, RunnableConfig]:
        config = ensure_config(config)
        return self._plan(self._convert_input(input).to_messages(), config, kwargs), config

    def _target(self, model: str, binding: ToolBinding | None) -> Runnable:
        candidate = self.candidates[model]
        return candidate if binding is None else binding.apply(candidate)

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else (self.stop or None)

    # ------------------------------------------------------------------ invoke
    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> AIMessage:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            return ended(exc)
        run, child = tracing.start_run(self, config, plan.messages, plan.call.record)
        try:
            model, message, record = try_in_order(
                plan.call,
                lambda m: self._target(m, plan.binding).invoke(plan.messages, child, stop=self._stop(stop), **plan.kwargs),
                plan.usage,
            )
            out = plan.finish(message, model, record)
        except BaseException as exc:
            if not ends_run(exc):
                run.on_chain_error(exc)
                raise
            out = ended(exc)
        tracing.end_run(run, plan.call.record, out)
        return out

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> AIMessage:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            return ended(exc)
        run, child = await tracing.astart_run(self, config, plan.messages, plan.call.record)
        try:
            model, message, record = await atry_in_order(
                plan.call,
                lambda m: self._target(m, plan.binding).ainvoke(plan.messages, child, stop=self._stop(stop), **plan.kwargs),
                plan.usage,
            )
            out = plan.finish(message, model, record)
        except BaseException as exc:
            if not ends_run(exc):
                await run.on_chain_error(exc)
                raise
            out = ended(exc)
        await tracing.aend_run(run, plan.call.record, out)
        return out

    # ------------------------------------------------------------------ batch
    def _warm(self, inputs: Sequence[LanguageModelInput]) -> None:
        """Embed every input's query text in one pass (the embedder caches per text)."""
        queries = []
        for item in inputs:
            try:
                messages = self._convert_input(item).to_messages()
                queries.append(routing_text_of(messages, self._rule(), None, self.routing_text).text)
            except (ScopeError, ValueError, TypeError, NotImplementedError):
                continue  # that item fails on its own, with its own error
        if queries:
            self.router.embed(queries)

    def batch(self, inputs: list[LanguageModelInput], config: Any = None, *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """Route a batch: its query texts are embedded in one pass, then each item is routed.
        With ``return_exceptions``, an item stopped by its budget returns its `BudgetExceeded`."""
        self._warm(inputs)
        if return_exceptions and inputs:
            return batch_keeping_stops(self.invoke, inputs, config, **kwargs)
        return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)

    async def abatch(self, inputs: list[LanguageModelInput], config: Any = None, *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """Async `batch` (the one-pass embedding runs in a worker thread)."""
        import asyncio

        await asyncio.to_thread(self._warm, inputs)
        if return_exceptions and inputs:
            return await abatch_keeping_stops(self.ainvoke, inputs, config, **kwargs)
        return await super().abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)

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
                plan.usage,
            )
        except BudgetExceeded as exc:
            return ChatResult(generations=[ChatGeneration(message=ended(exc))])
        return ChatResult(generations=[ChatGeneration(message=plan.finish(message, model, record))])

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
                plan.usage,
            )
        except BudgetExceeded as exc:
            return ChatResult(generations=[ChatGeneration(message=ended(exc))])
        return ChatResult(generations=[ChatGeneration(message=plan.finish(message, model, record))])

    # ------------------------------------------------------------------ feedback
    def record_feedback(self, call: str | UUID | CallRecord | BaseMessage, correct: float) -> int:
        """Store a routed call's real outcome in the history (by reply, run id, call id or record);
        feedback on the same call again replaces the earlier one."""
        return record_feedback(self.router, call, correct)


#: keywords the constructor takes besides the model's fields (they build the core router)
_ROUTER_KEYWORDS = ("cards", "history", "estimator", "embedder")


def _constructor_keywords(cls: type[SCOPERouter]) -> set[str]:
    """Every keyword ``cls(...)`` accepts: its fields (and their aliases) and the core router's."""
    names = set(_ROUTER_KEYWORDS)
    for name, info in cls.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
    return names


class KnobConfigurableFields(RunnableConfigurableFields):
    """``configurable_fields`` of a `SCOPERouter`: when a call configures a knob field, the router is
    rebuilt with that knob alone (the knob it was built with gives way), so every knob is
    configurable whatever the constructor set."""

    def _prepare(self, config: RunnableConfig | None = None) -> tuple[Runnable, RunnableConfig]:
        config = ensure_config(config)
        given = config.get("configurable", {})
        configured = {
            key for key, spec in self.fields.items()
            if isinstance(spec, ConfigurableField) and given.get(spec.id) is not None
        }
        if configured & set(KNOB_KINDS):
            base = self.default.model_copy(update={k: None for k in KNOB_KINDS})
            return RunnableConfigurableFields(default=base, fields=self.fields)._prepare(config)
        return super()._prepare(config)
