"""Streaming a routed call: candidates in ranked order, falling back only before the first chunk.

One chunk is held back, so the final one can carry what is known only at the end (the settled
cost, the call's record) and LangChain's ``chunk_position="last"``. Once a candidate has produced a
chunk there is no switch: if its stream then stops (it fails, the consumer closes it or breaks
out, the task is cancelled, the client disconnects), the candidate's own stream is closed at once
and ``stopped`` settles the call with what was produced (the provider billed it), flagged with the
reason; after a failure the chunk held back is still delivered before the error propagates. A
candidate that fails before its first chunk releases its hold, and the next one is tried if the
error is in the call's ``fallback_on``.

    for chunk in stream_in_order(call, start=lambda m: candidate(m).stream(...), add=operator.add,
                                 finish=lambda m, last, acc: annotate(last),
                                 stopped=lambda m, acc, why: settle_partial(m, acc, why)):
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
Stopped = Callable[[str, Any, BaseException], None]  # (model, accumulated, why) -> settles the call


def stream_in_order(
    call: RoutedCall, start: Callable[[str], Iterator[T]], add: Add, finish: Finish, stopped: Stopped
) -> Iterator[T]:
    """Stream the first candidate that starts; ``finish`` turns its last chunk into the final one."""
    for model in call.models_to_try():
        held: Any = _NONE
        acc: Any = None
        source = start(model)
        try:
            for chunk in source:
                acc = add(acc, chunk)  # counted as soon as it is produced
                if held is not _NONE:
                    yield held
                held = chunk
        except BaseException as exc:  # also GeneratorExit: the consumer stopped
            getattr(source, "close", lambda: None)()
            if held is _NONE:  # nothing produced: release the hold, perhaps try the next one
                call.failed(model, exc)
                if call.moves_on(exc):
                    continue
                raise
            stopped(model, acc, exc)
            if isinstance(exc, Exception):  # deliver what was produced, then the error
                yield held
            raise
        yield finish(model, None if held is _NONE else held, acc)
        return
    raise call.all_failed()


async def astream_in_order(
    call: RoutedCall, start: Callable[[str], AsyncIterator[T]], add: Add, finish: Finish, stopped: Stopped
) -> AsyncIterator[T]:
    """Async `stream_in_order` (run it under ``contextlib.aclosing`` so ``aclose()`` reaches it)."""
    for model in call.models_to_try():
        held: Any = _NONE
        acc: Any = None
        source = start(model)
        try:
            async for chunk in source:
                acc = add(acc, chunk)
                if held is not _NONE:
                    yield held
                held = chunk
        except BaseException as exc:  # also GeneratorExit (aclose) and CancelledError
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
            if held is _NONE:
                call.failed(model, exc)
                if call.moves_on(exc):
                    continue
                raise
            stopped(model, acc, exc)
            if isinstance(exc, Exception):
                yield held
            raise
        yield finish(model, None if held is _NONE else held, acc)
        return
    raise call.all_failed()


def add_chunks(acc: Any, chunk: Any) -> Any:
    """Accumulate message chunks (``acc + chunk``)."""
    return chunk if acc is None else acc + chunk


def keep_last(_acc: Any, chunk: Any) -> Any:
    """Accumulate by keeping the latest chunk (structured output streams whole objects)."""
    return chunk
