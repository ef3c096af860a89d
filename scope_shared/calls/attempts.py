"""Drive a `RoutedCall` through its candidates: try each in ranked order until one answers.

The loop every integration needs around `RoutedCall` (reserve -> call -> settle, or release and
try the next), written once. The framework supplies ``attempt(model)``, the real call, and either
``usage_of(model, answer)`` (`try_in_order` settles for it) or its own settling after
`first_answer`.

    model, answer, record = try_in_order(call, attempt, usage_of)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from scope_shared.calls.routed_call import RoutedCall
from scope_shared.routing.records import CallRecord, Usage

T = TypeVar("T")


def first_answer(
    call: RoutedCall, attempt: Callable[[str], T], reraise: tuple[type[BaseException], ...] = ()
) -> tuple[str, T]:
    """Call candidates best-first until one answers; raise `call.all_failed()` if none does.

    An error in ``call.fallback_on`` (default: any ``Exception``) means "try the next one". Any
    other error, those listed in ``reraise`` (a framework's control-flow signals) and
    non-``Exception`` ones (cancellation, interrupts, a budget stop) release the candidate's
    budget hold and propagate at once. The caller settles the answer.
    """
    for model in call.models_to_try():
        try:
            return model, attempt(model)
        except BaseException as exc:
            call.failed(model, exc)
            if isinstance(exc, reraise) or not call.moves_on(exc):
                raise
    raise call.all_failed()


async def afirst_answer(
    call: RoutedCall, attempt: Callable[[str], Awaitable[T]], reraise: tuple[type[BaseException], ...] = ()
) -> tuple[str, T]:
    """Async `first_answer`: ``attempt`` returns an awaitable (a cancelled one releases its hold)."""
    for model in call.models_to_try():
        try:
            return model, await attempt(model)
        except BaseException as exc:
            call.failed(model, exc)
            if isinstance(exc, reraise) or not call.moves_on(exc):
                raise
    raise call.all_failed()


def try_in_order(
    call: RoutedCall,
    attempt: Callable[[str], T],
    usage_of: Callable[[str, T], Usage],
    reraise: tuple[type[BaseException], ...] = (),
) -> tuple[str, T, CallRecord]:
    """`first_answer`, then settle the real cost from ``usage_of(model, answer)``."""
    model, answer = first_answer(call, attempt, reraise)
    return model, answer, call.succeeded(model, usage_of(model, answer))


async def atry_in_order(
    call: RoutedCall,
    attempt: Callable[[str], Awaitable[T]],
    usage_of: Callable[[str, T], Usage],
    reraise: tuple[type[BaseException], ...] = (),
) -> tuple[str, T, CallRecord]:
    """Async `try_in_order`."""
    model, answer = await afirst_answer(call, attempt, reraise)
    return model, answer, call.succeeded(model, usage_of(model, answer))
