"""Trying a routed call's candidates in order, for plain, async and streamed LlamaIndex calls.

The core's `RoutedCall` holds the budget and knows the order; this module only wraps the four
shapes a LlamaIndex call takes (value, awaitable, iterator, async iterator). A stream falls back to
the next candidate only if it fails before its first chunk; once chunks flow it settles when it
ends, and if it stops early (the consumer closes it, the task is cancelled, the provider fails
part-way) it settles with everything produced (the chunk held back included: the provider has
billed it), flagged with why, closes the child's stream and lets the stop through. One chunk is
held back so that the last one can carry the settled cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

from scope_shared.calls import RoutedCall, stop_reason
from scope_shared.calls.attempts import afirst_answer, first_answer

T = TypeVar("T")
C = TypeVar("C")  # a candidate (a LlamaIndex LLM)
Settle = Callable[[str, Any, "str | None"], None]  # (model, final response or None, why it stopped) -> None
_END = object()


def _tag(chunk: Any, early: dict[str, Any]) -> Any:
    """Mark a chunk with the call id and model before its cost is known."""
    kwargs = getattr(chunk, "additional_kwargs", None)
    if isinstance(kwargs, dict):
        kwargs["scope"] = early
    return chunk


def _early(call: RoutedCall, model: str) -> dict[str, Any]:
    return {"call_id": call.record.call_id, "model": model, "chosen": call.decision.model}


def run(call: RoutedCall, children: Mapping[str, C], invoke: Callable[[C], T], settle: Settle) -> T:
    """Call candidates in ranked order until one answers; settle it."""
    model, response = first_answer(call, lambda m: invoke(children[m]))
    settle(model, response, None)
    return response


async def arun(call: RoutedCall, children: Mapping[str, C], invoke: Callable[[C], Awaitable[T]], settle: Settle) -> T:
    """`run` for awaitable calls."""
    model, response = await afirst_answer(call, lambda m: invoke(children[m]))
    settle(model, response, None)
    return response


def run_stream(
    call: RoutedCall, children: Mapping[str, C], start: Callable[[C], Iterator[T]], settle: Settle
) -> Iterator[T]:
    """Start candidates in order until one yields a first chunk (or ends empty); stream the rest."""
    for model in call.models_to_try():
        try:
            it = iter(start(children[model]))
            first: Any = next(it, _END)
        except BaseException as exc:
            call.failed(model, exc)
            if call.moves_on(exc):
                continue
            raise
        return _stream_tail(call, model, first, it, settle)
    raise call.all_failed()


def _stream_tail(call: RoutedCall, model: str, first: Any, it: Iterator[T], settle: Settle) -> Iterator[T]:
    early = _early(call, model)
    last: Any = first  # the newest chunk produced; the one before it is the one handed out
    try:
        if first is not _END:
            for chunk in it:
                held, last = last, chunk
                yield _tag(held, early)
    except BaseException as exc:  # the consumer stopped, or the child failed part-way
        settle(model, None if last is _END else last, stop_reason(exc))
        getattr(it, "close", lambda: None)()
        raise
    settle(model, None if last is _END else last, None)
    if last is not _END:
        yield last


async def arun_stream(
    call: RoutedCall, children: Mapping[str, C], start: Callable[[C], Awaitable[AsyncIterator[T]]], settle: Settle
) -> AsyncIterator[T]:
    """`run_stream` for async streams."""
    for model in call.models_to_try():
        try:
            it = (await start(children[model])).__aiter__()
            try:
                first: Any = await it.__anext__()
            except StopAsyncIteration:
                first = _END
        except BaseException as exc:
            call.failed(model, exc)
            if call.moves_on(exc):
                continue
            raise
        return _astream_tail(call, model, first, it, settle)
    raise call.all_failed()


async def _astream_tail(
    call: RoutedCall, model: str, first: Any, it: AsyncIterator[T], settle: Settle
) -> AsyncIterator[T]:
    early = _early(call, model)
    last: Any = first  # the newest chunk produced; the one before it is the one handed out
    try:
        if first is not _END:
            async for chunk in it:
                held, last = last, chunk
                yield _tag(held, early)
    except BaseException as exc:  # aclose(), a cancelled task, or the child failed part-way
        settle(model, None if last is _END else last, stop_reason(exc))
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    settle(model, None if last is _END else last, None)
    if last is not _END:
        yield last
