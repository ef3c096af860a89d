"""Streaming a routed call: candidates in ranked order, falling back only before the first chunk.

One chunk is held back, so the final one can carry what is known only at the end (the settled
cost, the call's record) and LangChain's ``chunk_position="last"``. If a candidate fails after its
first chunk, what it produced is delivered and the error propagates: no silent switch mid-stream. A consumer that stops
early (``GeneratorExit``) or a cancellation releases the budget hold.

    for chunk in stream_in_order(call, start=lambda m: candidate(m).stream(...), add=operator.add,
                                 finish=lambda m, last, acc: annotate(last)):
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from scope_shared.calls import RoutedCall

T = TypeVar("T")
A = TypeVar("A")
_NONE: Any = object()

Add = Callable[[Any, T], Any]  # (accumulated or None, chunk) -> accumulated
Finish = Callable[[str, Any, Any], T]  # (model, last chunk or None, accumulated or None) -> final chunk


def stream_in_order(call: RoutedCall, start: Callable[[str], Iterator[T]], add: Add, finish: Finish) -> Iterator[T]:
    """Stream the first candidate that starts; ``finish`` turns its last chunk into the final one."""
    for model in call.models_to_try():
        held: Any = _NONE
        acc: Any = None
        try:
            for chunk in start(model):
                if held is not _NONE:
                    yield held
                held = chunk
                acc = add(acc, chunk)
        except BaseException as exc:  # also GeneratorExit: release the hold
            call.failed(model, exc)
            if not isinstance(exc, Exception):
                raise
            if held is not _NONE:  # deliver what was produced, then the error
                yield held
                raise
            continue
        yield finish(model, None if held is _NONE else held, acc)
        return
    raise call.all_failed()


async def astream_in_order(
    call: RoutedCall, start: Callable[[str], AsyncIterator[T]], add: Add, finish: Finish
) -> AsyncIterator[T]:
    """Async `stream_in_order`."""
    for model in call.models_to_try():
        held: Any = _NONE
        acc: Any = None
        try:
            async for chunk in start(model):
                if held is not _NONE:
                    yield held
                held = chunk
                acc = add(acc, chunk)
        except BaseException as exc:
            call.failed(model, exc)
            if not isinstance(exc, Exception):
                raise
            if held is not _NONE:
                yield held
                raise
            continue
        yield finish(model, None if held is _NONE else held, acc)
        return
    raise call.all_failed()


def add_chunks(acc: Any, chunk: Any) -> Any:
    """Accumulate message chunks (``acc + chunk``)."""
    return chunk if acc is None else acc + chunk


def keep_last(_acc: Any, chunk: Any) -> Any:
    """Accumulate by keeping the latest chunk (structured output streams whole objects)."""
    return chunk
