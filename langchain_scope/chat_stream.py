"""`SCOPERouter`'s stream paths: ``stream``/``astream`` and LangChain's ``_stream``/``_astream``.

A routed stream plans the call like ``invoke`` does, opens the routing run, streams the first
candidate that starts (`langchain_scope.streaming`: falling back only before its first chunk) and
ends on a last chunk carrying the settled call's record. A stream stopped early (``break``,
``close()``, a cancelled task) or failing part-way is charged what it produced, flagged partial;
under an ``"end"``-mode budget a call that cannot be paid streams one final message instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig

from langchain_scope import tracing
from langchain_scope.budget import ended, ends_run
from langchain_scope.streaming import add_chunks, astream_in_order, stream_in_order
from scope_shared.errors import BudgetExceeded

if TYPE_CHECKING:
    from langchain_scope.chat_model import SCOPERouter


def _is_final(chunk: AIMessageChunk) -> bool:
    return chunk.chunk_position == "last" and "scope" in chunk.response_metadata


class RoutedStreams:
    """Stream methods of `SCOPERouter` (a mixin: it uses the router's ``_prepare``/``_target``/``_stop``)."""

    def stream(
        self: SCOPERouter, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            yield ended(exc, chunk=True)
            return
        run, child = tracing.start_run(self, config, plan.messages, plan.call.record)
        final: AIMessageChunk | None = None
        try:
            for chunk in stream_in_order(
                plan.call,
                lambda m: self._target(m, plan.binding).stream(plan.messages, child, stop=self._stop(stop), **plan.kwargs),
                add_chunks, plan.final_chunk, plan.settle_stopped,
            ):
                final = chunk if _is_final(chunk) else None
                yield chunk
        except BaseException as exc:
            if not ends_run(exc):  # a graceful stop is only raised before any chunk is out
                run.on_chain_error(exc)
                raise
            final = ended(exc, chunk=True)
            yield final
        tracing.end_run(run, plan.call.record, final)

    async def astream(
        self: SCOPERouter, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            yield ended(exc, chunk=True)
            return
        run, child = await tracing.astart_run(self, config, plan.messages, plan.call.record)
        final: AIMessageChunk | None = None
        chunks = astream_in_order(
            plan.call,
            lambda m: self._target(m, plan.binding).astream(plan.messages, child, stop=self._stop(stop), **plan.kwargs),
            add_chunks, plan.final_chunk, plan.settle_stopped,
        )
        try:
            async with aclosing(chunks):  # closing this stream closes (and settles) the routed one at once
                async for chunk in chunks:
                    final = chunk if _is_final(chunk) else None
                    yield chunk
        except BaseException as exc:
            if not ends_run(exc):
                await run.on_chain_error(exc)
                raise
            final = ended(exc, chunk=True)
            yield final
        await tracing.aend_run(run, plan.call.record, final)

    def _stream(
        self: SCOPERouter, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """For LangChain's own streaming paths (``stream_events(version="v3")``): `stream`, as generation chunks."""
        for chunk in self.stream(messages, stop=stop, **kwargs):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self: SCOPERouter, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self.astream(messages, stop=stop, **kwargs):
            yield ChatGenerationChunk(message=chunk)
