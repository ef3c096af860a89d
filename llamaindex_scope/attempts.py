"""Trying a routed call's candidates in order, for plain, async and streamed LlamaIndex calls.

The core's `RoutedCall` holds the budget and knows the order, and the core's streamed fallback loop
(`scope_shared.calls.streams`) falls back only before the first chunk and settles a stream that
stops early; this module only wraps the four shapes a LlamaIndex call takes (value, awaitable,
iterator, async iterator) and says how LlamaIndex's cumulative chunks settle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

from scope_shared.calls import RoutedCall, stop_reason
from scope_shared.calls.attempts import afirst_answer, first_answer
from scope_shared.calls.streams import StreamHooks, aopen_stream, astream_rest, keep_last, open_stream, stream_rest

T = TypeVar("T")
C = TypeVar("C")  # a candidate (a LlamaIndex LLM)
Settle = Callable[[str, Any, "str | None"], None]  # (model, final response or None, why it stopped) -> None


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
    """Start candidates in order until one yields a first chunk (or ends empty); stream the rest.

    The fallback happens here, at call time (as a LlamaIndex ``stream_*`` call raises at once);
    the loop itself is the core's (`scope_shared.calls.streams`)."""
    model, first, source = open_stream(call, lambda m: start(children[m]))
    return stream_rest(model, first, source, _hooks(call, settle))


async def arun_stream(
    call: RoutedCall, children: Mapping[str, C], start: Callable[[C], Awaitable[AsyncIterator[T]]], settle: Settle
) -> AsyncIterator[T]:
    """`run_stream` for async streams."""
    model, first, source = await aopen_stream(call, lambda m: start(children[m]))
    return astream_rest(model, first, source, _hooks(call, settle))


def _hooks(call: RoutedCall, settle: Settle) -> StreamHooks[Any]:
    """LlamaIndex's chunks are cumulative (the latest holds the whole answer so far): each chunk
    before the last carries the call id and model; the last, once settled, the whole record."""

    def finish(model: str, last: Any, _acc: Any) -> Any:
        settle(model, last, None)
        return last

    return StreamHooks(
        finish=finish,
        stopped=lambda model, latest, why: settle(model, latest, stop_reason(why)),
        add=keep_last,
        each=lambda model, chunk: _tag(chunk, _early(call, model)),
    )
