"""`SCOPERouter.stream` / ``astream`` after planning: stream the best candidate that starts, settle.

A candidate that fails before its first chunk hands over to the next one (if the error is in
``fallback_on``). Once chunks are out there is no switch: if the stream then stops (the consumer
closes it or breaks out, the task is cancelled, the client disconnects, the provider fails), the
candidate's own stream is closed at once and the call is charged what it produced (its reported
usage, else counted locally), flagged ``partial`` with the reason, before the stop goes on.
The last chunk carries the routed model and the call's record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessageChunk

from langchain_scope import tracing
from langchain_scope.budget import stop_message
from scope_shared.calls import ends_gracefully, stop_reason
from scope_shared.errors import BudgetExceeded

if TYPE_CHECKING:
    from langchain_scope.chat_model import SCOPERouter, _Plan


def _settle_stopped(owner: "SCOPERouter", plan: "_Plan", model: str, acc: AIMessageChunk, why: BaseException) -> None:
    """A stream that stopped after some chunks: charge what it produced (flagged partial)."""
    plan.call.succeeded(model, owner._usage(plan)(model, acc), stopped=stop_reason(why))


def stream_routed(owner: "SCOPERouter", plan: "_Plan", run: Any, child: Any, stop: list[str] | None) -> Iterator[AIMessageChunk]:
    """The chunks of a planned call (``run``: its routing run; ``child``: the candidate's config)."""
    try:
        for model in plan.call.models_to_try():
            acc: AIMessageChunk | None = None
            source = owner._target(model, plan.binding).stream(plan.messages, child, stop=stop, **plan.kwargs)
            try:
                for chunk in source:
                    acc = chunk if acc is None else acc + chunk
                    yield owner._strip(chunk)
            except BaseException as exc:  # also GeneratorExit: the consumer stopped
                source.close()  # the candidate's stream (its connection) too, right now
                if acc is not None:  # part of an answer is out: charge it; no switch mid-stream
                    _settle_stopped(owner, plan, model, acc, exc)
                    raise
                plan.call.failed(model, exc)
                if plan.call.moves_on(exc):
                    continue
                raise
            record = plan.call.succeeded(model, owner._usage(plan)(model, acc))
            last = owner._last_chunk(acc, model, record, plan)
            yield last
            run.on_chain_end(tracing.outputs(acc + last if acc is not None else last, record))
            return
        raise plan.call.all_failed()
    except BudgetExceeded as exc:  # no candidate could be held (the budget was spent meanwhile)
        if not ends_gracefully(exc):
            run.on_chain_error(exc)
            raise
        ended = stop_message(exc, chunk=True)
        yield ended
        run.on_chain_end(tracing.outputs(ended, plan.call.record))
    except BaseException as exc:
        run.on_chain_error(exc)
        raise


async def astream_routed(
    owner: "SCOPERouter", plan: "_Plan", run: Any, child: Any, stop: list[str] | None
) -> AsyncIterator[AIMessageChunk]:
    """Async `stream_routed`."""
    try:
        for model in plan.call.models_to_try():
            acc: AIMessageChunk | None = None
            source = owner._target(model, plan.binding).astream(plan.messages, child, stop=stop, **plan.kwargs)
            try:
                async for chunk in source:
                    acc = chunk if acc is None else acc + chunk
                    yield owner._strip(chunk)
            except BaseException as exc:  # also GeneratorExit (aclose) and CancelledError
                await source.aclose()  # type: ignore[attr-defined]
                if acc is not None:
                    _settle_stopped(owner, plan, model, acc, exc)
                    raise
                plan.call.failed(model, exc)
                if plan.call.moves_on(exc):
                    continue
                raise
            record = plan.call.succeeded(model, owner._usage(plan)(model, acc))
            last = owner._last_chunk(acc, model, record, plan)
            yield last
            await run.on_chain_end(tracing.outputs(acc + last if acc is not None else last, record))
            return
        raise plan.call.all_failed()
    except BudgetExceeded as exc:
        if not ends_gracefully(exc):
            await run.on_chain_error(exc)
            raise
        ended = stop_message(exc, chunk=True)
        yield ended
        await run.on_chain_end(tracing.outputs(ended, plan.call.record))
    except BaseException as exc:
        await run.on_chain_error(exc)
        raise
