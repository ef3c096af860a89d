"""Drive a `RoutedCall` through its candidates: try each in ranked order until one answers.

The loop every integration needs around `RoutedCall` (reserve -> call -> settle, or release and
try the next), written once. The framework supplies two functions: ``attempt(model)`` makes the
real call, ``usage_of(model, answer)`` reads (or counts) the tokens it used.

    model, answer, record = try_in_order(call, attempt, usage_of)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from scope_shared.calls import CallRecord, RoutedCall, Usage

T = TypeVar("T")


def try_in_order(
    call: RoutedCall,
    attempt: Callable[[str], T],
    usage_of: Callable[[str, T], Usage],
    reraise: tuple[type[BaseException], ...] = (),
) -> tuple[str, T, CallRecord]:
    """Call candidates best-first until one answers; raise `call.all_failed()` if none does.

    Exceptions listed in ``reraise`` (e.g. a framework's control-flow signals) are not treated as
    a candidate failure: the hold is released and they propagate at once.
    """
    for model in call.models_to_try():
        try:
            answer = attempt(model)
        except reraise as exc:
            call.failed(model, exc)
            raise
        except Exception as exc:  # noqa: BLE001 - any provider error means "try the next one"
            call.failed(model, exc)
            continue
        return model, answer, call.succeeded(model, usage_of(model, answer))
    raise call.all_failed()


async def atry_in_order(
    call: RoutedCall,
    attempt: Callable[[str], Awaitable[T]],
    usage_of: Callable[[str, T], Usage],
    reraise: tuple[type[BaseException], ...] = (),
) -> tuple[str, T, CallRecord]:
    """Async `try_in_order`: ``attempt`` returns an awaitable."""
    for model in call.models_to_try():
        try:
            answer = await attempt(model)
        except reraise as exc:
            call.failed(model, exc)
            raise
        except Exception as exc:  # noqa: BLE001
            call.failed(model, exc)
            continue
        return model, answer, call.succeeded(model, usage_of(model, answer))
    raise call.all_failed()
