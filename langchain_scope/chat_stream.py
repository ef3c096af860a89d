"""`SCOPERouter`'s stream paths (``stream``/``astream``; its ``_stream``/``_astream`` go through them).

A routed stream plans the call like ``invoke`` does, opens the routing run, streams the first
candidate that starts (the core's `scope_shared.calls.streams`: falling back only before its first
chunk) and ends on a last chunk carrying the settled call's record. A stream stopped early (``break``,
``close()``, a cancelled task) or failing part-way is charged what it produced, flagged partial;
under an ``"end"``-mode budget a call that cannot be paid streams one final message instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import RunnableConfig

from langchain_scope import tracing
from langchain_scope.budget import ended, ends_run
from langchain_scope.planner import Planner
from scope_shared.calls.streams import astream_in_order, stream_in_order
from scope_shared.errors import BudgetExceeded


def _is_final(chunk: AIMessageChunk) -> bool:
    return chunk.chunk_position == "last" and "scope" in chunk.response_metadata


def stream(
    owner: BaseChatModel, planner: Planner, input: LanguageModelInput, config: RunnableConfig | None,
    stop: list[str] | None, kwargs: dict[str, Any],
) -> Iterator[AIMessageChunk]:
    """Stream one routed call of ``owner`` (the routing run is traced under it)."""
    try:
        plan, config = planner.plan(input, config, kwargs)
    except BudgetExceeded as exc:
        yield ended(exc, chunk=True)
        return
    run, child = tracing.start_run(owner, config, plan.messages, plan.call.record)
    final: AIMessageChunk | None = None
    try:
        for chunk in stream_in_order(
            plan.call,
            lambda m: planner.target(m, plan.binding).stream(plan.messages, child, stop=planner.stop(stop), **plan.kwargs),
            plan.stream_hooks(),
        ):
            final = chunk if _is_final(chunk) else None
            yield chunk
    except BaseException as exc:
        if not ends_run(exc):  # a graceful stop is only raised before any chunk is out
            run.on_chain_error(exc)
            raise
        final = ended(exc, chunk=True)
        yield final
    tracing.end_run(run, plan.call.record, final)


async def astream(
    owner: BaseChatModel, planner: Planner, input: LanguageModelInput, config: RunnableConfig | None,
    stop: list[str] | None, kwargs: dict[str, Any],
) -> AsyncIterator[AIMessageChunk]:
    """Async `stream`."""
    try:
        plan, config = planner.plan(input, config, kwargs)
    except BudgetExceeded as exc:
        yield ended(exc, chunk=True)
        return
    run, child = await tracing.astart_run(owner, config, plan.messages, plan.call.record)
    final: AIMessageChunk | None = None
    chunks = astream_in_order(
        plan.call,
        lambda m: planner.target(m, plan.binding).astream(plan.messages, child, stop=planner.stop(stop), **plan.kwargs),
        plan.stream_hooks(),
    )
    try:
        async with aclosing(chunks):  # closing this stream closes (and settles) the routed one at once
            async for chunk in chunks:
                final = chunk if _is_final(chunk) else None
                yield chunk
    except BaseException as exc:
        if not ends_run(exc):
            await run.on_chain_error(exc)
            raise
        final = ended(exc, chunk=True)
        yield final
    await tracing.aend_run(run, plan.call.record, final)
