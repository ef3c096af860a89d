"""`SCOPERouter`'s stream paths (``stream``/``astream``; its ``_stream``/``_astream`` go through them).

A routed stream plans the call like ``invoke`` does, opens the router's chat-model run
(`langchain_scope.tracing`: each chunk reported as its token, the candidate's run nested), streams the first
candidate that starts (the core's `scope_shared.calls.streams`: falling back only before its first
chunk) and ends on a last chunk carrying the settled call's record. A stream stopped early (``break``,
``close()``, a cancelled task) or failing part-way is charged what it produced, flagged partial;
under an ``"end"``-mode budget a call that cannot be paid streams one final message instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig, ensure_config

from langchain_scope import tracing
from langchain_scope.budget import ended, ends_run
from langchain_scope.planner import Plan, Planner
from scope_shared.calls.streams import add_chunks, astream_in_order, stream_in_order
from scope_shared.errors import BudgetExceeded


def candidate_chunks(planner: Planner, plan: Plan, child: RunnableConfig, stop: list[str] | None) -> Iterator[AIMessageChunk]:
    """The routed candidates' chunks (the first that starts), the last carrying the record."""
    return stream_in_order(
        plan.call,
        lambda m: tracing.iterate_in(
            child, lambda: planner.target(m, plan.binding).stream(plan.messages, child, stop=planner.stop(stop), **plan.kwargs)
        ),
        plan.stream_hooks(),
    )


def acandidate_chunks(planner: Planner, plan: Plan, child: RunnableConfig, stop: list[str] | None) -> AsyncIterator[AIMessageChunk]:
    """Async `candidate_chunks`."""
    return astream_in_order(
        plan.call,
        lambda m: tracing.aiterate_in(
            child, lambda: planner.target(m, plan.binding).astream(plan.messages, child, stop=planner.stop(stop), **plan.kwargs)
        ),
        plan.stream_hooks(),
    )


def traced_chunks(
    planner: Planner, plan: Plan, run: CallbackManagerForLLMRun, child: RunnableConfig, stop: list[str] | None
) -> Iterator[AIMessageChunk]:
    """The routed chunks, each reported as a token of the router's own run (the last one carries
    the record); the run ends with their sum, or with the error."""
    acc: AIMessageChunk | None = None
    first_id: str | None = None
    try:
        for chunk in candidate_chunks(planner, plan, child, stop):
            chunk = tracing.with_run_id(chunk, run, first_id)
            first_id, acc = chunk.id, add_chunks(acc, chunk)
            tracing.report(run, chunk)
            yield chunk
    except BaseException as exc:
        if not ends_run(exc):  # a graceful stop is only raised before any chunk is out
            run.on_llm_error(exc)
            raise
        acc = tracing.with_run_id(ended(exc, chunk=True), run, first_id)  # type: ignore[arg-type]
        tracing.report(run, acc)
        yield acc
    tracing.end_chat_run(run, plan.call.record, acc if acc is not None else AIMessageChunk(content=""))


async def atraced_chunks(
    planner: Planner, plan: Plan, run: AsyncCallbackManagerForLLMRun, child: RunnableConfig, stop: list[str] | None
) -> AsyncIterator[AIMessageChunk]:
    """Async `traced_chunks`."""
    acc: AIMessageChunk | None = None
    first_id: str | None = None
    chunks = acandidate_chunks(planner, plan, child, stop)
    try:
        async with aclosing(chunks):  # closing this stream closes (and settles) the routed one at once
            async for chunk in chunks:
                chunk = tracing.with_run_id(chunk, run, first_id)
                first_id, acc = chunk.id, add_chunks(acc, chunk)
                await tracing.areport(run, chunk)
                yield chunk
    except BaseException as exc:
        if not ends_run(exc):
            await run.on_llm_error(exc)
            raise
        acc = tracing.with_run_id(ended(exc, chunk=True), run, first_id)  # type: ignore[arg-type]
        await tracing.areport(run, acc)
        yield acc
    await tracing.aend_chat_run(run, plan.call.record, acc if acc is not None else AIMessageChunk(content=""))


def whole(chunks: Iterator[AIMessageChunk]) -> AIMessage:
    """The reply an ``invoke`` returns after streaming: its chunks summed, as a whole message."""
    acc: AIMessageChunk | None = None
    for chunk in chunks:
        acc = add_chunks(acc, chunk)
    return message_chunk_to_message(acc if acc is not None else AIMessageChunk(content=""))  # type: ignore[return-value]


def stream(
    owner: BaseChatModel, facts: tracing.ChatRunFacts, planner: Planner, input: LanguageModelInput,
    config: RunnableConfig | None, stop: list[str] | None, kwargs: dict[str, Any],
) -> Iterator[AIMessageChunk]:
    """Stream one routed call of ``owner`` as ``owner``'s own chat-model run."""
    try:
        plan, config = planner.plan(input, config, kwargs)
    except BudgetExceeded as exc:
        yield ended(exc, chunk=True)
        return
    run, child = tracing.start_chat_run(owner, facts, config, plan.messages, plan.call.record, planner.stop(stop))
    yield from traced_chunks(planner, plan, run, child, stop)


async def astream(
    owner: BaseChatModel, facts: tracing.ChatRunFacts, planner: Planner, input: LanguageModelInput,
    config: RunnableConfig | None, stop: list[str] | None, kwargs: dict[str, Any],
) -> AsyncIterator[AIMessageChunk]:
    """Async `stream`."""
    try:
        plan, config = planner.plan(input, config, kwargs)
    except BudgetExceeded as exc:
        yield ended(exc, chunk=True)
        return
    run, child = await tracing.astart_chat_run(owner, facts, config, plan.messages, plan.call.record, planner.stop(stop))
    chunks = atraced_chunks(planner, plan, run, child, stop)
    async with aclosing(chunks):
        async for chunk in chunks:
            yield chunk


def generation_chunks(
    planner: Planner, messages: list[BaseMessage], stop: list[str] | None,
    run_manager: CallbackManagerForLLMRun | None, kwargs: dict[str, Any],
) -> Iterator[ChatGenerationChunk]:
    """For LangChain's own streaming paths (``_stream``; ``stream_events(version="v3")``): LangChain
    opened the router's run and reports its chunks; the decision is added to it, the candidate nests."""
    try:
        plan = planner.plan_messages(list(messages), ensure_config(), kwargs)
    except BudgetExceeded as exc:
        yield ChatGenerationChunk(message=ended(exc, chunk=True))
        return
    child = tracing.nested_config(run_manager, plan.call.record)
    for chunk in candidate_chunks(planner, plan, child, stop):
        yield ChatGenerationChunk(message=chunk)


async def ageneration_chunks(
    planner: Planner, messages: list[BaseMessage], stop: list[str] | None,
    run_manager: AsyncCallbackManagerForLLMRun | None, kwargs: dict[str, Any],
) -> AsyncIterator[ChatGenerationChunk]:
    """Async `generation_chunks`."""
    try:
        plan = planner.plan_messages(list(messages), ensure_config(), kwargs)
    except BudgetExceeded as exc:
        yield ChatGenerationChunk(message=ended(exc, chunk=True))
        return
    child = tracing.nested_config(run_manager, plan.call.record)
    chunks = acandidate_chunks(planner, plan, child, stop)
    async with aclosing(chunks):
        async for chunk in chunks:
            yield ChatGenerationChunk(message=chunk)
