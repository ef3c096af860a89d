"""`SCOPELLM`: a LlamaIndex `FunctionCallingLLM` that routes each call to one of several LlamaIndex LLMs.

Each call (chat, complete, their stream and async forms, and the ``*_with_tools`` forms an agent
uses) is planned with the core's `RoutedCall`: the router picks a child under the knob and ledger in
force, the child's expected cost is held in the ledger, the child answers (the next in the ranking
does if it raises before answering), and the real cost is settled from the child's reported token
usage, or from the router's token counter when the child reports none (then marked counted).

The account of the call (`CallRecord.metadata()`: call id, choice, knob, estimates, expected and
real cost) is in ``response.additional_kwargs["scope"]`` and ``response.raw["scope"]`` (when the
child's raw is empty or a dict), and is dispatched as `SCOPERoutingEvent` / `SCOPECostEvent`.
SCOPELLM is not itself an LLM call, so it sends no LLM events (no ``@llm_chat_callback``): a call's
span holds SCOPE's events and the LLM span of the child that answered (and of any that failed).
Give feedback with ``router.record_feedback(response.additional_kwargs["scope"]["call_id"], correct)``.

Budgets: a call holds the expected cost of everything it sends (every message, so the retrieved
context of a RAG prompt, and tool schemas); a stream stopped early is charged what it produced
(flagged ``partial``) and closing it releases its hold at once (`llamaindex_scope.streaming`); under
an ``"end"``-mode budget a call it cannot pay for answers with a final message instead of raising.
``fallback_on`` says which child errors move on to the next candidate.

Async calls plan in a worker thread (``asyncio.to_thread``, which carries the ``scope_budget`` block
and the instrumentation span along), so embedding the query does not block the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection

from llamaindex_scope import attempts, streaming
from llamaindex_scope.budget import (
    chat_prompt_tokens,
    ends_with,
    stop_chat,
    stop_completion,
)
from llamaindex_scope.events import emit_routed
from llamaindex_scope.settling import settler
from llamaindex_scope.messages import messages_text
from llamaindex_scope.retrieved import retrieved_texts
from llamaindex_scope.routing_text import RoutingTextFn, default_rule, routing_text_of
from llamaindex_scope.tool_calls import (
    child_chat_kwargs,
    pop_tool_args,
    tool_models,
    validated,
)
from scope_shared.arguments import check_keywords
from scope_shared.budget.nesting import LedgerLike
from scope_shared.budget.settings import Settings, settings_for_call
from scope_shared.calls import (
    DEFAULT_FALLBACK_ON,
    FallbackOn,
    RoutedCall,
    check_fallback_on,
    prompt_tokens,
)
from scope_shared.errors import (
    FeedbackError,
    InvalidCardError,
    InvalidComponentError,
    NoCandidatesError,
    NoToolCapableCandidate,
    ToolCallError,
)
from scope_shared.routing.knobs import KNOB_KINDS, KnobLike
from scope_shared.routing.router import Router

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

#: per-call keyword arguments SCOPELLM reads (and does not pass on to the child)
ROUTING_KWARGS = ("knob", *KNOB_KINDS, "ledger", "routing_text")


class SCOPELLM(FunctionCallingLLM):
    """Route every LLM call to the candidate SCOPE predicts is best under the knob in force.

    Args:
        router: the SCOPE `Router` (cards and history of the candidates).
        llms: the candidate LlamaIndex LLMs by model name; every name needs a card in the router.
        knob / max_cost / tradeoff / min_accuracy / accuracy_margin / alpha: the pipeline's knob
            (at most one; ``knob=`` takes a `Knob` or ``{"min_accuracy": 0.8}``; default: the
            router's). Overridden by a ``scope_budget`` block, and per call by the same keyword
            arguments (``llm.chat(messages, min_accuracy=0.9)``): `scope_shared.budget.settings`.
        ledger: the pipeline's budget (optional; a ledger, or a ``postgresql://`` URL of a shared
            one); overridden the same way (``ledger=``).
        routing_text: what to route on, given the prompt (completions) or the messages (chats);
            ``None`` from it falls back to the default rule (the question inside LlamaIndex's
            templates, `llamaindex_scope.routing_text`). A call's ``routing_text="..."`` keyword, a marked
            message or a ``route_on(...)`` block wins over it.
        templates: your own prompt templates to recognise beside LlamaIndex's.
        fallback_on: child errors that move the call on to the next candidate (default any
            ``Exception``); others propagate at once, as the child raised them.

    Usable as ``Settings.llm``, as any engine's ``llm=``, and by ``FunctionAgent`` (tool calls go
    only to children that are function-calling LLMs). An unknown keyword raises
    `UnknownArgumentError` naming the closest valid one.
    """

    llms: dict[str, Any] = Field(exclude=True, description="candidate LlamaIndex LLMs by model name")
    candidates: list[str] = Field(default_factory=list, description="the candidate model names")

    _router: Router = PrivateAttr()
    _built: Settings = PrivateAttr(default_factory=Settings)
    _fallback_on: FallbackOn = PrivateAttr(default=DEFAULT_FALLBACK_ON)
    _routing_text: RoutingTextFn | None = PrivateAttr(default=None)
    _rule: Any = PrivateAttr(default=None)
    _last_model: str | None = PrivateAttr(default=None)

    def __init__(
        self,
        router: Router,
        llms: Mapping[str, LLM],
        *,
        knob: KnobLike | None = None,
        max_cost: float | None = None,
        tradeoff: float | None = None,
        min_accuracy: float | None = None,
        accuracy_margin: float | None = None,
        alpha: float | None = None,
        ledger: LedgerLike | str | None = None,
        routing_text: RoutingTextFn | None = None,
        templates: Sequence[Any] = (),
        fallback_on: FallbackOn = DEFAULT_FALLBACK_ON,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        check_keywords(kwargs, _keywords(type(self)), type(self).__name__)
        if not isinstance(router, Router):
            raise InvalidComponentError(f"router must be a scope_shared.Router, got {type(router).__name__}")
        if not isinstance(llms, Mapping) or not llms:
            raise NoCandidatesError("SCOPELLM needs at least one candidate LLM: llms={model name: LLM}")
        for name, llm in llms.items():
            if name not in router.cards:
                raise InvalidCardError(
                    f"LLM {name!r} has no model card in the router; cards are {', '.join(router.models)}"
                )
            if not isinstance(llm, LLM):
                raise InvalidComponentError(f"candidate {name!r} is a {type(llm).__name__}, not a LlamaIndex LLM")
        built = Settings.read(  # validated once: at most one knob, in range; a ledger or a postgresql:// URL
            knob=knob, max_cost=max_cost, tradeoff=tradeoff, min_accuracy=min_accuracy,
            accuracy_margin=accuracy_margin, alpha=alpha, ledger=ledger,
        )
        fallback_on = check_fallback_on(fallback_on)
        super().__init__(
            llms=dict(llms),
            candidates=list(llms),
            callback_manager=callback_manager or CallbackManager([]),
            **kwargs,
        )
        self._router = router
        self._built = built
        self._fallback_on = fallback_on
        self._routing_text = routing_text
        self._rule = default_rule(templates)

    @classmethod
    def class_name(cls) -> str:
        return "SCOPELLM"

    @property
    def router(self) -> Router:
        return self._router

    @property
    def ledger(self) -> LedgerLike | None:
        """The ledger set at construction (a ``scope_budget`` block or a call may use another)."""
        return self._built.ledger

    @property
    def metadata(self) -> LLMMetadata:
        metas = [llm.metadata for llm in self.llms.values()]
        return LLMMetadata(
            context_window=min(m.context_window for m in metas),
            num_output=min(m.num_output for m in metas if m.num_output > 0)
            if any(m.num_output > 0 for m in metas)
            else metas[0].num_output,
            is_chat_model=any(m.is_chat_model for m in metas),
            is_function_calling_model=bool(tool_models(self.llms)),
            model_name=f"scope[{','.join(self.llms)}]",
        )

    # ---------------------------------------------------------------- planning and settling
    def _plan(
        self, source: str | Sequence[ChatMessage], kwargs: dict[str, Any], tools: bool, n_prompt: int
    ) -> tuple[RoutedCall, dict[str, Any]]:
        """Pop the routing kwargs, decide (pricing the ``n_prompt`` tokens sent), dispatch the
        routing event; returns the child's kwargs."""
        routing = {k: kwargs.pop(k) for k in ROUTING_KWARGS if k in kwargs}
        routed = routing_text_of(
            source, self._rule, explicit=routing.pop("routing_text", None), custom=self._routing_text,
            retrieved=retrieved_texts(),
        )
        settings = settings_for_call(Settings.read(routing), built=self._built)
        candidates = list(self.llms)
        if tools:
            candidates = tool_models(self.llms)
            if not candidates:
                raise NoToolCapableCandidate("tools were given, but no candidate LLM is a function-calling LLM")
        call = RoutedCall.plan(
            self._router, routed, settings, candidates=candidates, prompt_tokens=n_prompt,
            fallback_on=self._fallback_on,
        )
        emit_routed(call.record, "llm")
        return call, kwargs

    def _settler(self, call: RoutedCall, input_text: str) -> attempts.Settle:
        """How ``call`` settles (`llamaindex_scope.settling`); remembers which child answered."""
        return settler(call, input_text, self._router.count_tokens, self._answered)

    def _answered(self, model: str) -> None:
        self._last_model = model

    # ---------------------------------------------------------------- chat
    def _chat_plan(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> tuple[RoutedCall, dict[str, Any], dict[str, Any]]:
        tool_args = pop_tool_args(kwargs)
        tools = tool_args.get("tools") or ()
        n_prompt = chat_prompt_tokens(messages, tools, self._router.count_tokens)
        call, rest = self._plan(messages, kwargs, tools=bool(tools), n_prompt=n_prompt)
        return call, rest, tool_args

    @ends_with(stop_chat)
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        call, rest, tool_args = self._chat_plan(messages, kwargs)

        def invoke(llm: LLM) -> ChatResponse:
            response = llm.chat(**child_chat_kwargs(llm, messages, rest, tool_args))
            return validated(llm, response, tool_args)

        return attempts.run(call, self.llms, invoke, self._settler(call, messages_text(messages)))

    @ends_with(stop_chat)
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        call, rest, tool_args = await asyncio.to_thread(self._chat_plan, messages, kwargs)

        async def invoke(llm: LLM) -> ChatResponse:
            response = await llm.achat(**child_chat_kwargs(llm, messages, rest, tool_args))
            return validated(llm, response, tool_args)

        return await attempts.arun(call, self.llms, invoke, self._settler(call, messages_text(messages)))

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return streaming.stream_closing_all(self._stream_chat, messages, **kwargs)

    @ends_with(stop_chat, stream=True)
    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        call, rest, tool_args = self._chat_plan(messages, kwargs)

        def start(llm: LLM) -> ChatResponseGen:
            return llm.stream_chat(**child_chat_kwargs(llm, messages, rest, tool_args))

        settle = self._settler(call, messages_text(messages))
        return streaming.register(attempts.run_stream(call, self.llms, start, settle))

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return await streaming.astream_closing_all(self._astream_chat, messages, **kwargs)

    @ends_with(stop_chat, stream=True)
    async def _astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        call, rest, tool_args = await asyncio.to_thread(self._chat_plan, messages, kwargs)

        def start(llm: LLM) -> Awaitable[ChatResponseAsyncGen]:
            return llm.astream_chat(**child_chat_kwargs(llm, messages, rest, tool_args))

        settle = self._settler(call, messages_text(messages))
        return streaming.register(await attempts.arun_stream(call, self.llms, start, settle))

    # ---------------------------------------------------------------- completion
    def _complete_plan(self, prompt: str, kwargs: dict[str, Any]) -> tuple[RoutedCall, dict[str, Any]]:
        n_prompt = prompt_tokens([prompt], self._router.count_tokens)
        return self._plan(prompt, kwargs, tools=False, n_prompt=n_prompt)

    @ends_with(stop_completion)
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        call, rest = self._complete_plan(prompt, kwargs)
        return attempts.run(
            call, self.llms, lambda llm: llm.complete(prompt, formatted=formatted, **rest), self._settler(call, prompt)
        )

    @ends_with(stop_completion)
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        call, rest = await asyncio.to_thread(self._complete_plan, prompt, kwargs)
        return await attempts.arun(
            call, self.llms, lambda llm: llm.acomplete(prompt, formatted=formatted, **rest), self._settler(call, prompt)
        )

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return streaming.stream_closing_all(self._stream_complete, prompt, formatted=formatted, **kwargs)

    @ends_with(stop_completion, stream=True)
    def _stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        call, rest = self._complete_plan(prompt, kwargs)

        def start(llm: LLM) -> CompletionResponseGen:
            return llm.stream_complete(prompt, formatted=formatted, **rest)

        return streaming.register(attempts.run_stream(call, self.llms, start, self._settler(call, prompt)))

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return await streaming.astream_closing_all(self._astream_complete, prompt, formatted=formatted, **kwargs)

    @ends_with(stop_completion, stream=True)
    async def _astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        call, rest = await asyncio.to_thread(self._complete_plan, prompt, kwargs)

        async def start(llm: LLM) -> CompletionResponseAsyncGen:
            return await llm.astream_complete(prompt, formatted=formatted, **rest)

        return streaming.register(await attempts.arun_stream(call, self.llms, start, self._settler(call, prompt)))

    # ---------------------------------------------------------------- tools
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Neutral arguments for `chat`: the chosen child prepares the tools in its own format later."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
        elif user_msg is not None:
            messages.append(user_msg)
        return {
            "messages": messages,
            "tools": list(tools),
            "verbose": verbose,
            "allow_parallel_tool_calls": allow_parallel_tool_calls,
            "tool_required": tool_required,
            **kwargs,
        }

    def as_structured_llm(self, output_cls: type, **kwargs: Any) -> LLM:
        """A structured LLM whose responses keep SCOPE's account (``additional_kwargs["scope"]``)."""
        from llamaindex_scope.structured import SCOPEStructuredLLM

        return SCOPEStructuredLLM(llm=self, output_cls=output_cls, **kwargs)

    def answering_model(self, response: ChatResponse | CompletionResponse) -> str:
        """The candidate that produced ``response`` (from its SCOPE metadata, else the last answer)."""
        scope = response.additional_kwargs.get("scope") or {}
        model = scope.get("model") or self._last_model
        if model is None or model not in self.llms:
            raise FeedbackError("cannot tell which candidate produced this response (no SCOPE metadata)")
        return model

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """Read tool calls the way the child that answered writes them (a budget stop has none)."""
        if (response.additional_kwargs.get("scope") or {}).get("budget_exhausted"):
            if error_on_no_tool_call:
                raise ToolCallError("the budget is spent: this answer is a stop message, with no tool calls")
            return []
        child = self.llms[self.answering_model(response)]
        return child.get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )


#: the keywords `SCOPELLM` itself takes
_KEYWORDS = ("router", "llms", "knob", *KNOB_KINDS, "ledger", "routing_text", "templates", "fallback_on", "callback_manager")


def _keywords(cls: type[SCOPELLM]) -> set[str]:
    """Every keyword ``cls(...)`` accepts: its own and the LLM base class's fields (and aliases)."""
    names: set[str] = set(_KEYWORDS)
    for name, info in cls.model_fields.items():
        if name in ("llms", "candidates"):
            continue
        names.add(name)
        if info.alias:
            names.add(info.alias)
    return names
