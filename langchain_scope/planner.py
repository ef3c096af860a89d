"""Planning one `SCOPERouter` call: its input, config and arguments -> a `Plan` (decided, not yet made).

A `Planner` is what a `SCOPERouter` knows about planning (its core router, candidates, the settings
it was built with, its routing-text rule, ``fallback_on`` and default ``stop``); the router's own
paths (invoke, batch, generate), its stream paths (`langchain_scope.chat_stream`) and its
structured-output runnable (`langchain_scope.structured`) all plan through its public methods.

A `Plan` holds what is sent (the messages without routing markers, the bound tools or schema, the
candidate's own arguments), the core's `RoutedCall`, and the candidates skipped for lacking a
capability. Its methods read a reply's real token usage and write the call's record into what the
caller gets back (``response_metadata["scope"]``), the same way on every path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config

from langchain_scope import config as cfg
from langchain_scope.budget import bound_tools, prompt_token_count
from langchain_scope.messages import usage_of
from langchain_scope.retrieved import retrieved_texts
from langchain_scope.routing_text import RoutingTextFn, explicit_in, routing_text_of, without_markers
from langchain_scope.tools import TOOLS_KEY
from scope_shared.budget.settings import Settings
from scope_shared.calls import DEFAULT_FALLBACK_ON, CallRecord, FallbackOn, RoutedCall, Usage, stop_reason
from scope_shared.calls.streams import StreamHooks, add_chunks
from scope_shared.errors import UnknownModelError
from scope_shared.routing.router import Router
from scope_shared.routing.routing_text import RoutingText, RoutingTextRule
from scope_shared.tokens import TokenCounter



class Binding(Protocol):
    """What a call binds to the chosen candidate: tools (`langchain_scope.tools.ToolBinding`) or an
    output schema (`langchain_scope.structured.StructuredBinding`)."""

    def apply(self, candidate: Runnable) -> Runnable: ...

    def capable(
        self, names: Sequence[str], candidates: Mapping[str, Runnable], cards: Mapping[str, Any]
    ) -> tuple[list[str], dict[str, str]]: ...


def messages_of(input: LanguageModelInput) -> list[BaseMessage]:
    """The messages of a chat model's input (a prompt value, a string, or messages), as LangChain
    reads them."""
    if isinstance(input, PromptValue):
        return input.to_messages()
    if isinstance(input, str):
        return convert_to_messages([("human", input)])
    if isinstance(input, Sequence):
        return convert_to_messages(input)
    raise ValueError(f"Invalid input type {type(input)}. Must be a PromptValue, str, or list of BaseMessages.")


@dataclass(frozen=True)
class Planner:
    """How one `SCOPERouter` plans its calls (see the module docstring)."""

    router: Router
    candidates: Mapping[str, Any]
    built: Settings
    rule: RoutingTextRule
    routing_text: RoutingTextFn | None = None
    fallback_on: FallbackOn = DEFAULT_FALLBACK_ON
    default_stop: list[str] | None = None

    def plan(
        self, input: LanguageModelInput, config: RunnableConfig | None, kwargs: Mapping[str, Any]
    ) -> tuple[Plan, RunnableConfig]:
        """Plan a call of ``input`` under ``config`` (``kwargs``: the call's own arguments, with a
        bound `ToolBinding`/`StructuredBinding` under ``TOOLS_KEY`` and ``model=`` to force one)."""
        config = ensure_config(config)
        return self.plan_messages(messages_of(input), config, kwargs), config

    def plan_messages(self, messages: list[BaseMessage], config: RunnableConfig, kwargs: Mapping[str, Any]) -> Plan:
        """`plan` for messages already read from the input."""
        kwargs = dict(kwargs)
        binding = kwargs.pop(TOOLS_KEY, None)
        forced = kwargs.pop("model", None)
        settings = cfg.settings_of_call(config, cfg.run_context(config), self.built)
        names = list(self.candidates)
        if forced is not None:
            if forced not in self.candidates:
                raise UnknownModelError(f"model={forced!r} is not a candidate; candidates are {', '.join(names)}")
            names = [forced]
        skipped: dict[str, str] = {}
        if binding is not None:  # tools or a structured-output schema: only capable candidates compete
            names, skipped = binding.capable(names, self.candidates, self.router.cards)
        routed = self.routing_text_of(messages, config)
        sent = without_markers(messages)
        run_id = config.get("run_id")
        call = RoutedCall.plan(
            self.router, routed, settings, candidates=names,
            call_id=None if run_id is None else str(run_id),
            prompt_tokens=prompt_token_count(sent, bound_tools(binding), self.router.count_tokens),
            fallback_on=self.fallback_on,
        )
        return Plan(sent, call, binding, kwargs, self.router.count_tokens, skipped)

    def routing_text_of(self, messages: Sequence[BaseMessage], config: RunnableConfig | None = None) -> RoutingText:
        """What a call of ``messages`` made with ``config`` is routed on (`langchain_scope.routing_text`):
        its explicit routing text, else the rule, with what retrievers returned in the same run as context."""
        config = config or {}
        return routing_text_of(
            list(messages), self.rule, explicit=explicit_in(config.get("configurable")), custom=self.routing_text,
            retrieved=retrieved_texts(config),
        )

    def target(self, model: str, binding: Binding | None) -> Runnable:
        """The candidate ``model``, with the call's tools or schema bound."""
        candidate = self.candidates[model]
        return candidate if binding is None else binding.apply(candidate)

    def stop(self, stop: list[str] | None) -> list[str] | None:
        """The stop sequences of a call: its own, else the router's."""
        return stop if stop is not None else (self.default_stop or None)


@dataclass
class Plan:
    """One call, decided but not yet made."""

    messages: list[BaseMessage]
    call: RoutedCall
    binding: Binding | None
    kwargs: dict[str, Any]
    count_tokens: TokenCounter
    skipped: dict[str, str] = field(default_factory=dict)

    def usage(self, model: str, message: BaseMessage | None) -> Usage:
        """The tokens ``model``'s reply used: reported by the provider, else counted locally."""
        return usage_of(message, self.messages, self.count_tokens)

    def scope_meta(self, record: CallRecord) -> dict[str, Any]:
        """What goes under ``response_metadata["scope"]``: the call's record and the skipped candidates."""
        return {**record.metadata(), "skipped": dict(self.skipped)}

    def finish(self, message: BaseMessage, model: str, record: CallRecord) -> AIMessage:
        """The candidate's reply with the call's record under ``response_metadata["scope"]``; the
        provider's ``model_name`` is kept (the card name fills it only when the provider gave none)."""
        meta = {"model_name": model, **message.response_metadata, "scope": self.scope_meta(record)}
        return message.model_copy(update={"response_metadata": meta})  # type: ignore[return-value]

    def final_chunk(self, model: str, last: AIMessageChunk | None, acc: AIMessageChunk | None) -> AIMessageChunk:
        """Settle a finished stream; its last chunk carries the record and ``chunk_position="last"``."""
        record = self.call.succeeded(model, self.usage(model, acc))
        last = last if last is not None else AIMessageChunk(content="")
        meta: dict[str, Any] = {"scope": self.scope_meta(record)}
        if acc is None or "model_name" not in acc.response_metadata:
            meta["model_name"] = model
        return last.model_copy(
            update={"response_metadata": {**last.response_metadata, **meta}, "chunk_position": "last"}
        )

    def settle_stopped(self, model: str, acc: AIMessageChunk, why: BaseException) -> None:
        """A stream that stopped after some chunks: charge what it produced (flagged partial)."""
        self.call.succeeded(model, self.usage(model, acc), stopped=stop_reason(why))

    def stream_hooks(self) -> StreamHooks[AIMessageChunk]:
        """How this call's message chunks add up and settle in the core's streamed fallback loop."""
        return StreamHooks(finish=self.final_chunk, stopped=self.settle_stopped, add=add_chunks)
