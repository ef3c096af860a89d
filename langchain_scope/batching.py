"""``batch(..., return_exceptions=True)`` that returns budget stops as values too.

`BudgetExceeded` is not an ``Exception`` (so that fallbacks do not swallow it), and LangChain's
``Runnable.batch`` only turns ``Exception``s into returned values: one stopped item would end the
whole batch and lose the answers already paid for. These run each item the way ``Runnable.batch``
does (same executor, same ``max_concurrency``) and return every error, stops included, in place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list, get_executor_for_config
from langchain_core.runnables.utils import gather_with_concurrency

from scope_shared.errors import BudgetExceeded


def batch_keeping_stops(
    invoke: Callable[..., Any], inputs: Sequence[Any], config: Any, **kwargs: Any
) -> list[Any]:
    """``invoke`` each input (in LangChain's batch executor); errors and stops are returned in place."""
    configs = get_config_list(config, len(inputs))

    def one(item: Any, c: RunnableConfig) -> Any:
        try:
            return invoke(item, c, **kwargs)
        except (Exception, BudgetExceeded) as exc:
            return exc

    with get_executor_for_config(configs[0]) as executor:
        return list(executor.map(one, inputs, configs))


async def abatch_keeping_stops(
    ainvoke: Callable[..., Awaitable[Any]], inputs: Sequence[Any], config: Any, **kwargs: Any
) -> list[Any]:
    """Async `batch_keeping_stops` (at most ``max_concurrency`` at a time)."""
    configs = get_config_list(config, len(inputs))

    async def one(item: Any, c: RunnableConfig) -> Any:
        try:
            return await ainvoke(item, c, **kwargs)
        except (Exception, BudgetExceeded) as exc:
            return exc

    return await gather_with_concurrency(configs[0].get("max_concurrency"), *(one(i, c) for i, c in zip(inputs, configs)))
