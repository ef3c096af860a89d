"""Streams that stop early: why they stopped, and closing every layer of a wrapped stream at once.

A stream the consumer stops (``break``, ``close()``/``aclose()``), that is cancelled (a task
cancelled, a client disconnected) or that fails part-way has still been billed for what it
produced: the integrations settle it with those tokens (`RoutedCall.succeeded(..., stopped=...)`)
and record it. `closing` / `aclosing` make sure that when the consumer closes the outermost
stream, the layers inside it (a framework's callback wrapper, our settling generator) are closed
right then, not when the garbage collector or the event loop gets round to them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


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
