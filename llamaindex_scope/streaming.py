"""Closing a routed LlamaIndex stream at once, through whatever wraps it.

A wrapper around a streaming method's generator (LlamaIndex's ``@llm_chat_callback``, the budget's
"end"-mode wrapper) does not close the generator inside it when it is closed: an async stream stopped
early would keep its budget hold until the event loop finalised the inner generator. So the public
streaming methods of `SCOPELLM` call their twin through `stream_closing_all` (inside `capture()`),
the twin `register`s the settling generator it returns, and the user gets
`scope_shared.calls.closing` / ``aclosing`` over both: ``close()``/``aclose()`` on what the user holds closes every layer right
then, and the stream settles what it produced.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from scope_shared.calls import aclosing, closing

T = TypeVar("T")
_TAILS: ContextVar[list[Any] | None] = ContextVar("scope_stream_tails", default=None)


@contextmanager
def capture() -> Iterator[list[Any]]:
    """Collect the generators `register`ed by the call made inside the block."""
    tails: list[Any] = []
    token = _TAILS.set(tails)
    try:
        yield tails
    finally:
        _TAILS.reset(token)


def register(tail: T) -> T:
    """Note ``tail`` (a settling generator) for the `capture` block around this call."""
    tails = _TAILS.get()
    if tails is not None:
        tails.append(tail)
    return tail


def stream_closing_all(decorated: Callable[..., Any], *args: Any, **kwargs: Any) -> Generator[Any, None, None]:
    """Call ``decorated`` (a streaming method under LlamaIndex's callback decorator) inside `capture`;
    return its stream, closing it and every tail it registered when closed."""
    with capture() as tails:
        wrapped = decorated(*args, **kwargs)
    return closing(wrapped, *tails)


async def astream_closing_all(decorated: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
    """Async `stream_closing_all` (``decorated`` is a coroutine function returning an async stream)."""
    with capture() as tails:
        wrapped = await decorated(*args, **kwargs)
    return aclosing(wrapped, *tails)
