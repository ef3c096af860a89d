"""Streamed routed calls: the fallback loop, streams that stop early, and closing every layer at once.

`stream_in_order` / `astream_in_order` are the one streamed fallback loop both integrations use:
candidates in ranked order, falling back only before the first chunk (`open_stream`); once a
candidate has produced a chunk there is no switch (`stream_rest`). One chunk is held back, so the
final one can carry what is known only at the end (the settled cost, the call's record). If the
stream then stops (it fails, the consumer closes it or breaks out, the task is cancelled, the client
disconnects), the candidate's own stream is closed at once and the call is settled with what was
produced (the provider billed it), flagged with the reason; after a failure the chunk held back is
still delivered before the error propagates. The framework says, in `StreamHooks`, how chunks add
up, how the last one is finished and how a stopped stream is settled.

A stream the consumer stops (``break``, ``close()``/``aclose()``), that is cancelled (a task
cancelled, a client disconnected) or that fails part-way has still been billed for what it
produced: the integrations settle it with those tokens (`RoutedCall.succeeded(..., stopped=...)`)
and record it. `closing` / `aclosing` make sure that when the consumer closes the outermost
stream, the layers inside it (a framework's callback wrapper, our settling generator) are closed
right then, not when the garbage collector or the event loop gets round to them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from scope_shared.calls.routed_call import RoutedCall

T = TypeVar("T")
#: "the stream ended before its first chunk" (an empty stream)
END: Any = object()


def stop_reason(error: BaseException | None) -> str:
    """Why a stream ended before its end: ``"closed by the consumer"``, ``"cancelled"``, or the error."""
    if error is None or isinstance(error, GeneratorExit):
        return "closed by the consumer"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return f"failed: {type(error).__name__}: {error}"


def closing(outer: Iterator[T], *inner: Any) -> Generator[T, None, None]:
    """Iterate ``outer``; when this generator is closed (or ends, or fails) close ``outer`` and
    then every ``inner`` generator it wraps, innermost last."""
    try:
        yield from outer
    finally:
        for gen in (outer, *inner):
            close = getattr(gen, "close", None)
            if close is not None:
                close()


async def aclosing(outer: AsyncIterator[T], *inner: Any) -> AsyncGenerator[T, None]:
    """Async `closing`: ``aclose()`` on this generator closes ``outer`` and every ``inner`` one."""
    try:
        async for item in outer:
            yield item
    finally:
        for gen in (outer, *inner):
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                await aclose()


# ---------------------------------------------------------------------- the streamed fallback loop
def add_chunks(acc: Any, chunk: Any) -> Any:
    """Accumulate chunks that add up (``acc + chunk``: LangChain's message chunks)."""
    return chunk if acc is None else acc + chunk


def keep_last(_acc: Any, chunk: Any) -> Any:
    """Accumulate by keeping the latest chunk (cumulative responses, structured objects)."""
    return chunk


@dataclass(frozen=True)
class StreamHooks(Generic[T]):
    """What a framework says about its chunks.

    - ``finish(model, last, acc)``: settle a finished stream and return the final chunk to hand out
      (``last``: its last chunk, None for an empty stream; ``acc``: all of it), or None for none;
    - ``stopped(model, acc, why)``: settle a stream that stopped after some chunks (``why``: the
      error, ``GeneratorExit`` or ``CancelledError``; `stop_reason` words it);
    - ``add(acc, chunk)``: how chunks add up (`add_chunks`, `keep_last`);
    - ``each(model, chunk)``: a chunk handed out before the last (default: as it is).
    """

    finish: Callable[[str, Any, Any], T | None]
    stopped: Callable[[str, Any, BaseException], None]
    add: Callable[[Any, Any], Any] = add_chunks
    each: Callable[[str, Any], Any] | None = None


def _close(source: Any) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()


async def _aclose(source: Any) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()


def open_stream(call: RoutedCall, start: Callable[[str], Iterator[T]]) -> tuple[str, Any, Iterator[T]]:
    """Start candidates in ranked order until one produces a first chunk (or ends empty: `END`).

    A candidate that fails first releases its hold; the next is tried if the error is in the
    call's ``fallback_on``, else it propagates. Raises ``call.all_failed()`` when none starts."""
    for model in call.models_to_try():
        source: Any = None
        try:
            source = iter(start(model))
            first = next(source, END)
        except BaseException as exc:
            _close(source)
            call.failed(model, exc)
            if call.moves_on(exc):
                continue
            raise
        return model, first, source
    raise call.all_failed()


async def aopen_stream(
    call: RoutedCall, start: Callable[[str], AsyncIterator[T] | Awaitable[AsyncIterator[T]]]
) -> tuple[str, Any, AsyncIterator[T]]:
    """Async `open_stream` (``start`` returns an async iterator, or an awaitable of one)."""
    for model in call.models_to_try():
        source: Any = None
        try:
            opened = start(model)
            if asyncio.iscoroutine(opened) or isinstance(opened, asyncio.Future):
                opened = await opened
            source = opened.__aiter__()  # type: ignore[union-attr]
            try:
                first = await source.__anext__()
            except StopAsyncIteration:
                first = END
        except BaseException as exc:
            if source is not None:
                await _aclose(source)
            call.failed(model, exc)
            if call.moves_on(exc):
                continue
            raise
        return model, first, source
    raise call.all_failed()


def stream_rest(model: str, first: Any, source: Iterator[T], hooks: StreamHooks[T]) -> Iterator[T]:
    """The chunks of the stream `open_stream` opened, one held back; settles it (module docstring)."""
    each = hooks.each or (lambda _m, chunk: chunk)
    held: Any = first
    acc: Any = None if first is END else hooks.add(None, first)
    try:
        if first is not END:
            for chunk in source:
                acc = hooks.add(acc, chunk)  # counted as soon as it is produced
                yield each(model, held)
                held = chunk
    except BaseException as exc:  # also GeneratorExit: the consumer stopped
        _close(source)
        hooks.stopped(model, acc, exc)
        if isinstance(exc, Exception):  # deliver what was produced, then the error
            yield each(model, held)
        raise
    final = hooks.finish(model, None if held is END else held, acc)
    if final is not None:
        yield final


async def astream_rest(model: str, first: Any, source: AsyncIterator[T], hooks: StreamHooks[T]) -> AsyncIterator[T]:
    """Async `stream_rest` (run it under `aclosing` so ``aclose()`` reaches it)."""
    each = hooks.each or (lambda _m, chunk: chunk)
    held: Any = first
    acc: Any = None if first is END else hooks.add(None, first)
    try:
        if first is not END:
            async for chunk in source:
                acc = hooks.add(acc, chunk)
                yield each(model, held)
                held = chunk
    except BaseException as exc:  # also GeneratorExit (aclose) and CancelledError
        await _aclose(source)
        hooks.stopped(model, acc, exc)
        if isinstance(exc, Exception):
            yield each(model, held)
        raise
    final = hooks.finish(model, None if held is END else held, acc)
    if final is not None:
        yield final


def stream_in_order(call: RoutedCall, start: Callable[[str], Iterator[T]], hooks: StreamHooks[T]) -> Iterator[T]:
    """The streamed fallback loop, lazily: nothing starts before the first chunk is asked for."""
    model, first, source = open_stream(call, start)
    yield from stream_rest(model, first, source, hooks)


async def astream_in_order(
    call: RoutedCall, start: Callable[[str], AsyncIterator[T] | Awaitable[AsyncIterator[T]]], hooks: StreamHooks[T]
) -> AsyncIterator[T]:
    """Async `stream_in_order` (run it under `aclosing` so ``aclose()`` reaches it)."""
    model, first, source = await aopen_stream(call, start)
    rest = astream_rest(model, first, source, hooks)
    try:
        async for chunk in rest:
            yield chunk
    finally:  # closing this stream closes (and settles) the candidate's at once
        await rest.aclose()
