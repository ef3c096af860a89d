"""Routed calls as traced runs.

`SCOPERouter` is traced as what it is to LangChain, a chat model: each call opens the router's own
chat-model run (`start_chat_run`; its id is the call id) with the router's ``ls_*`` params and the
decision in its metadata (chosen model, knob, expected cost, ranking, why), reports the chunks it
yields as that run's tokens (the last one carries the routing record, ``response_metadata["scope"]``)
and ends it with the whole reply. So callbacks, ``astream_events`` and LangGraph's
``stream_mode="messages"`` see the router's run and chunks. The chosen candidate is called under the
run (`child_callbacks`: a chat-model run has no ``get_child``), tagged `NOSTREAM_TAG` so that a
graph streams each reply once, with its config also set as the current one (`call_in`,
`iterate_in`: LangChain merges a candidate's config with the current one, whose parent would win).
When a fallback answers, `end_chat_run` rewrites ``scope_model`` to the model that answered (and adds
``scope_failed``) on every tracer that still holds the run.

A `SCOPEMiddleware` step is traced the same way (`RoutedStep`): the agent's model node calls the
candidate under the step's run, and the candidate's chunks are reported as the step's, one held
back so that the last can carry the record once the step is settled.

Structured output is not a chat model's reply (it returns parsed objects), so it keeps a *chain* run
named after the router (`start_run`), with the same metadata and the candidate nested under it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, AsyncCallbackManager, BaseCallbackHandler, CallbackManager
from langchain_core.callbacks.manager import (
    AsyncCallbackManagerForChainRun,
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForChainRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.runnables.config import patch_config, set_config_context
from langchain_core.runnables.utils import coro_with_context
from langchain_core.utils.utils import LC_ID_PREFIX

from scope_shared.calls import CallRecord

T = TypeVar("T")


def decision_metadata(record: CallRecord) -> dict[str, Any]:
    """Flat, JSON-friendly tracing metadata for a routing decision."""
    d = record.decision
    return {
        "scope_call_id": record.call_id,
        "scope_model": d.model,
        "scope_chosen": d.model,
        "scope_knob": dict(d.knob),
        "scope_expected_cost": d.chosen.expected_cost,
        "scope_p_correct": d.chosen.p_correct,
        "scope_ranking": list(d.ranking),
        "scope_explanation": d.explanation,
        "scope_budget_left": d.budget_left,
        "scope_ledger": record.ledger_name,
    }


def _configure_args(config: RunnableConfig, owner: Any, record: CallRecord) -> dict[str, Any]:
    return {
        "inheritable_callbacks": config.get("callbacks"),
        "local_callbacks": getattr(owner, "callbacks", None),  # a model's own (a middleware has none)
        "verbose": bool(getattr(owner, "verbose", False)),
        "inheritable_tags": config.get("tags"),
        "local_tags": getattr(owner, "tags", None),
        "inheritable_metadata": config.get("metadata"),
        "local_metadata": {**(getattr(owner, "metadata", None) or {}), **decision_metadata(record)},
    }


def _inputs(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    return {"messages": list(messages)}


def start_run(
    owner: Any, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord
) -> tuple[CallbackManagerForChainRun, RunnableConfig]:
    """Open the routing run (its id is the call id); return it and the config for the candidate."""
    manager = CallbackManager.configure(**_configure_args(config, owner, record))
    run = manager.on_chain_start(
        None,
        _inputs(messages),
        run_id=UUID(record.call_id),
        name=config.get("run_name") or owner.get_name(),
    )
    return run, patch_config(config, callbacks=run.get_child())


async def astart_run(
    owner: Any, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord
) -> tuple[AsyncCallbackManagerForChainRun, RunnableConfig]:
    """Async `start_run`."""
    manager = AsyncCallbackManager.configure(**_configure_args(config, owner, record))
    run = await manager.on_chain_start(
        None,
        _inputs(messages),
        run_id=UUID(record.call_id),
        name=config.get("run_name") or owner.get_name(),
    )
    return run, patch_config(config, callbacks=run.get_child())


def outputs(message: Any, record: CallRecord) -> dict[str, Any]:
    """What the routing run ends with."""
    return {"output": message, "scope": record.metadata()}


def _answered(run: Any, record: CallRecord) -> None:
    """Name the model that answered in the metadata tracers keep for the run (a fallback may have)."""
    if record.model is None or record.model == record.decision.model:
        return
    _update_traced(run, {"scope_model": record.model, "scope_failed": [a.model for a in record.failed]})


def _update_traced(run: Any, update: dict[str, Any]) -> None:
    """Add metadata to a started run on every tracer that holds it (LangSmith's, any ``BaseTracer``)."""
    for handler in {id(h): h for h in [*run.handlers, *run.inheritable_handlers]}.values():
        traced = getattr(handler, "run_map", {}).get(str(run.run_id))
        if traced is not None and hasattr(traced, "add_metadata"):
            traced.add_metadata(update)


def end_run(run: CallbackManagerForChainRun, record: CallRecord, output: Any) -> None:
    """End the routing run: metadata names the model that answered; outputs carry the record."""
    _answered(run, record)
    run.on_chain_end(outputs(output, record))


async def aend_run(run: AsyncCallbackManagerForChainRun, record: CallRecord, output: Any) -> None:
    """Async `end_run`."""
    _answered(run, record)
    await run.on_chain_end(outputs(output, record))


# ---------------------------------------------------------------- the router's own chat-model run
#: LangGraph's tag for runs whose chunks its ``stream_mode="messages"`` must not emit: the answering
#: candidate's run carries it, so a graph streams the router's chunks once, not the candidate's too.
NOSTREAM_TAG = "nostream"


@dataclass(frozen=True)
class ChatRunFacts:
    """What a chat model's own run reports about the model (LangChain reads these off the model
    itself: its serialized form, invocation params and ``ls_*`` params)."""

    serialized: dict[str, Any] | None
    invocation_params: dict[str, Any]
    ls_params: Mapping[str, Any]
    name: str | None = None  # the run's name when the config gives none (else the serialized one)


def _chat_configure_args(owner: Any, facts: ChatRunFacts, config: RunnableConfig, record: CallRecord) -> dict[str, Any]:
    # as a native chat model does: the ``ls_*`` params are inheritable (`child_callbacks` drops them)
    return {**_configure_args(config, owner, record),
            "inheritable_metadata": {**(config.get("metadata") or {}), **facts.ls_params}}


def _chat_start_args(facts: ChatRunFacts, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord, stop: list[str] | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (facts.serialized, [list(messages)]), {
        "invocation_params": facts.invocation_params,
        "options": {"stop": stop},
        "name": config.get("run_name") or facts.name,
        "run_id": UUID(record.call_id),
        "batch_size": 1,
    }


def child_callbacks(run: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun) -> CallbackManager | AsyncCallbackManager:
    """Callbacks for the candidate a chat-model run delegates to: its handlers, tags and metadata
    inherited, parented to the run (LangChain gives chat-model runs no ``get_child``), and tagged
    `NOSTREAM_TAG` so its chunks reach a LangGraph messages stream only as the router's."""
    manager_cls = AsyncCallbackManager if isinstance(run, AsyncCallbackManagerForLLMRun) else CallbackManager
    manager = manager_cls(handlers=[], parent_run_id=run.run_id)
    manager.set_handlers(run.inheritable_handlers)
    manager.add_tags(run.inheritable_tags)
    manager.add_tags([NOSTREAM_TAG])
    # the router's ``ls_*`` params describe the router, not the candidate (which may report none)
    manager.add_metadata({k: v for k, v in run.inheritable_metadata.items() if not k.startswith("ls_")})
    return manager


def start_chat_run(
    owner: Any, facts: ChatRunFacts, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord,
    stop: list[str] | None = None,
) -> tuple[CallbackManagerForLLMRun, RunnableConfig]:
    """Open the router's chat-model run (its id is the call id, its metadata the decision and the
    router's ``ls_*`` params); return it and the config the chosen candidate is called with."""
    manager = CallbackManager.configure(**_chat_configure_args(owner, facts, config, record))
    args, kwargs = _chat_start_args(facts, config, messages, record, stop)
    (run,) = manager.on_chat_model_start(*args, **kwargs)
    return run, patch_config(config, callbacks=child_callbacks(run))


async def astart_chat_run(
    owner: Any, facts: ChatRunFacts, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord,
    stop: list[str] | None = None,
) -> tuple[AsyncCallbackManagerForLLMRun, RunnableConfig]:
    """Async `start_chat_run`."""
    manager = AsyncCallbackManager.configure(**_chat_configure_args(owner, facts, config, record))
    args, kwargs = _chat_start_args(facts, config, messages, record, stop)
    (run,) = await manager.on_chat_model_start(*args, **kwargs)
    return run, patch_config(config, callbacks=child_callbacks(run))


def with_run_id(chunk: AIMessageChunk, run: Any, first_id: str | None) -> AIMessageChunk:
    """A chunk with an id: the stream's first id (the candidate's), else one from the router's run,
    so that every chunk of one reply shares one id (LangGraph dedupes the final message by it)."""
    if chunk.id is None:
        chunk.id = first_id or f"{LC_ID_PREFIX}-{run.run_id}"
    return chunk


def report(run: CallbackManagerForLLMRun, chunk: AIMessageChunk) -> None:
    """Report a chunk as a token of ``run`` (as a native chat model's stream does)."""
    run.on_llm_new_token(chunk.text, chunk=ChatGenerationChunk(message=chunk))


async def areport(run: AsyncCallbackManagerForLLMRun, chunk: AIMessageChunk) -> None:
    """Async `report`."""
    await run.on_llm_new_token(chunk.text, chunk=ChatGenerationChunk(message=chunk))


def _result(message: BaseMessage, record: CallRecord) -> LLMResult:
    if isinstance(message, BaseMessageChunk):
        message = message_chunk_to_message(message)
    return LLMResult(
        generations=[[ChatGeneration(message=message)]],
        llm_output={"model_name": record.model, "scope": record.metadata()},
    )


def end_chat_run(run: CallbackManagerForLLMRun, record: CallRecord, message: BaseMessage) -> None:
    """End the router's run with its reply (its ``response_metadata["scope"]`` is the record);
    the run's metadata names the model that answered (a fallback may have)."""
    _answered(run, record)
    run.on_llm_end(_result(message, record))


async def aend_chat_run(run: AsyncCallbackManagerForLLMRun, record: CallRecord, message: BaseMessage) -> None:
    """Async `end_chat_run`."""
    _answered(run, record)
    await run.on_llm_end(_result(message, record))


def note_decision(run: Any, record: CallRecord) -> None:
    """Add a decision to a run opened before it was made (LangChain's ``generate()`` path), on every
    tracer holding the run."""
    _update_traced(run, decision_metadata(record))


def nested_config(run: Any, record: CallRecord) -> RunnableConfig:
    """The config a candidate is called with under a router run LangChain opened itself (the
    ``generate()`` and ``_stream`` paths): the decision is added to the run, the candidate nests."""
    configurable = dict(ensure_config().get("configurable", {}))
    if run is None:
        return {"configurable": configurable}
    note_decision(run, record)
    return {"configurable": configurable, "callbacks": child_callbacks(run)}


def end_metadata(run: Any, record: CallRecord) -> None:
    """Before a run LangChain opened ends: name the model that answered (a fallback may have)."""
    _answered(run, record)


# ---------------------------------------------------------------- calling the candidate under the run
# A candidate reads its parent run from its config, but LangChain merges that config with the one in
# the current context (``RunnableBinding`` does, and a graph node sets one), whose parent then wins;
# so the candidate is called with its config in the context too, as a Runnable calls its steps.


def call_in(config: RunnableConfig, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with ``config`` as the current runnable config."""
    with set_config_context(config) as context:
        return context.run(fn, *args, **kwargs)


async def acall_in(config: RunnableConfig, coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` with ``config`` as the current runnable config."""
    with set_config_context(config) as context:
        return await coro_with_context(coro, context)


def iterate_in(config: RunnableConfig, start: Callable[[], Iterator[T]]) -> Iterator[T]:
    """The iterator ``start()`` makes, each step taken with ``config`` as the current runnable config."""
    with set_config_context(config) as context:
        chunks = context.run(start)
        try:
            while True:
                try:
                    chunk = context.run(next, chunks)
                except StopIteration:
                    return
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                context.run(close)


async def _step(chunks: AsyncIterator[T]) -> T:
    return await chunks.__anext__()


async def aiterate_in(config: RunnableConfig, start: Callable[[], AsyncIterator[T]]) -> AsyncIterator[T]:
    """Async `iterate_in`."""
    with set_config_context(config) as context:
        chunks = context.run(start)
        try:
            while True:
                try:
                    chunk = await coro_with_context(_step(chunks), context)
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await coro_with_context(close(), context)


# ---------------------------------------------------------------- a routed agent step (SCOPEMiddleware)
class RoutedStep:
    """An agent step routed by `SCOPEMiddleware`, traced as a chat-model run of its own: the
    candidate the agent's model node calls nests under it (tagged `NOSTREAM_TAG`), its chunks are
    reported as this run's with one held back, so the last one can carry the routing record once the
    step is settled."""

    def __init__(self, run: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun) -> None:
        self.run = run
        self.held: AIMessageChunk | None = None
        self.config: RunnableConfig = {}

    def hold(self, message: BaseMessage) -> AIMessageChunk | None:
        """Hold ``message`` back; return the one it replaces (to report now)."""
        if not isinstance(message, AIMessageChunk):
            return None
        out, self.held = self.held, message
        return out

    def last_chunk(self, message: BaseMessage | None) -> AIMessageChunk | None:
        """The held chunk as the step's last, carrying the final message's routing record."""
        held, self.held = self.held, None
        if held is None or message is None or "scope" not in message.response_metadata:
            return held
        meta = {**held.response_metadata, "scope": message.response_metadata["scope"]}
        return held.model_copy(update={"response_metadata": meta, "chunk_position": "last"})

    def drop(self) -> None:
        """A candidate failed: what it streamed and held back is not the step's answer."""
        self.held = None


class _Forward(BaseCallbackHandler):
    """Reports the tokens of the runs under a `RoutedStep` as the step's own."""

    run_inline = True

    def __init__(self, step: RoutedStep) -> None:
        self.step = step

    def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        if isinstance(chunk, ChatGenerationChunk) and run_id != self.step.run.run_id:
            out = self.step.hold(chunk.message)
            if out is not None:
                report(self.step.run, out)  # type: ignore[arg-type]


class _AForward(AsyncCallbackHandler):
    """Async `_Forward`."""

    run_inline = True

    def __init__(self, step: RoutedStep) -> None:
        self.step = step

    async def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        if isinstance(chunk, ChatGenerationChunk) and run_id != self.step.run.run_id:
            out = self.step.hold(chunk.message)
            if out is not None:
                await areport(self.step.run, out)  # type: ignore[arg-type]


def _step_config(run: Any, step: RoutedStep, config: RunnableConfig, forward: BaseCallbackHandler) -> RunnableConfig:
    child = child_callbacks(run)
    child.add_handler(forward, inherit=True)
    step.config = patch_config(config, callbacks=child)
    return step.config


def start_step(owner: Any, facts: ChatRunFacts, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord) -> RoutedStep:
    """Open a routed agent step's run (sync agents); call the candidate under ``step.config``."""
    run, _ = start_chat_run(owner, facts, config, messages, record)
    step = RoutedStep(run)
    _step_config(run, step, config, _Forward(step))
    return step


async def astart_step(owner: Any, facts: ChatRunFacts, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord) -> RoutedStep:
    """Async `start_step`."""
    run, _ = await astart_chat_run(owner, facts, config, messages, record)
    step = RoutedStep(run)
    _step_config(run, step, config, _AForward(step))
    return step


def end_step(step: RoutedStep, record: CallRecord, message: BaseMessage | None, error: BaseException | None = None) -> None:
    """End a step's run: its held chunk, now carrying the record, then its final message (or the error)."""
    run: Any = step.run
    if error is not None:
        step.drop()
        run.on_llm_error(error)
        return
    last = step.last_chunk(message)
    if last is not None:
        report(run, last)
    end_chat_run(run, record, message if message is not None else AIMessage(content=""))


async def aend_step(step: RoutedStep, record: CallRecord, message: BaseMessage | None, error: BaseException | None = None) -> None:
    """Async `end_step`."""
    run: Any = step.run
    if error is not None:
        step.drop()
        await run.on_llm_error(error)
        return
    last = step.last_chunk(message)
    if last is not None:
        await areport(run, last)
    await aend_chat_run(run, record, message if message is not None else AIMessage(content=""))
