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
from langchain_core.runnables import RunnableConfig, ensure_config

from langchain_scope import tracing
from langchain_scope.budget import ended, ends_run
from langchain_scope.streaming import add_chunks, astream_in_order, stream_in_order
from scope_shared.errors import BudgetExceeded

if TYPE_CHECKING:
    from langchain_scope.chat_model import SCOPERouter
    from langchain_scope.plan import Plan


class RoutedStreams:
    """Stream methods of `SCOPERouter` (a mixin: it uses the router's ``_prepare``/``_target``/``_stop``)."""

    def _candidate_chunks(self: SCOPERouter, plan: Plan, child: RunnableConfig, stop: list[str] | None) -> Iterator[AIMessageChunk]:
        return stream_in_order(
            plan.call,
            lambda m: tracing.iterate_in(
                child, lambda: self._target(m, plan.binding).stream(plan.messages, child, stop=self._stop(stop), **plan.kwargs)
            ),
            add_chunks, plan.final_chunk, plan.settle_stopped,
        )

    def _acandidate_chunks(self: SCOPERouter, plan: Plan, child: RunnableConfig, stop: list[str] | None) -> AsyncIterator[AIMessageChunk]:
        return astream_in_order(
            plan.call,
            lambda m: tracing.aiterate_in(
                child, lambda: self._target(m, plan.binding).astream(plan.messages, child, stop=self._stop(stop), **plan.kwargs)
            ),
            add_chunks, plan.final_chunk, plan.settle_stopped,
        )

    def _traced_chunks(
        self: SCOPERouter, plan: Plan, run: CallbackManagerForLLMRun, child: RunnableConfig, stop: list[str] | None
    ) -> Iterator[AIMessageChunk]:
        """The routed chunks, each reported as a token of the router's own run (the last one carries
        the record); the run ends with their sum, or with the error."""
        acc: AIMessageChunk | None = None
        first_id: str | None = None
        try:
            for chunk in self._candidate_chunks(plan, child, stop):
                chunk = tracing.with_run_id(chunk, run, first_id)
                first_id, acc = chunk.id, add_chunks(acc, chunk)
                text, generation = tracing.token(chunk)
                run.on_llm_new_token(text, chunk=generation)
                yield chunk
        except BaseException as exc:
            if not ends_run(exc):  # a graceful stop is only raised before any chunk is out
                run.on_llm_error(exc)
                raise
            acc = tracing.with_run_id(ended(exc, chunk=True), run, first_id)  # type: ignore[arg-type]
            text, generation = tracing.token(acc)
            run.on_llm_new_token(text, chunk=generation)
            yield acc
        tracing.end_chat_run(run, plan.call.record, acc if acc is not None else AIMessageChunk(content=""))

    async def _atraced_chunks(
        self: SCOPERouter, plan: Plan, run: AsyncCallbackManagerForLLMRun, child: RunnableConfig, stop: list[str] | None
    ) -> AsyncIterator[AIMessageChunk]:
        """Async `_traced_chunks`."""
        acc: AIMessageChunk | None = None
        first_id: str | None = None
        chunks = self._acandidate_chunks(plan, child, stop)
        try:
            async with aclosing(chunks):  # closing this stream closes (and settles) the routed one at once
                async for chunk in chunks:
                    chunk = tracing.with_run_id(chunk, run, first_id)
                    first_id, acc = chunk.id, add_chunks(acc, chunk)
                    text, generation = tracing.token(chunk)
                    await run.on_llm_new_token(text, chunk=generation)
                    yield chunk
        except BaseException as exc:
            if not ends_run(exc):
                await run.on_llm_error(exc)
                raise
            acc = tracing.with_run_id(ended(exc, chunk=True), run, first_id)  # type: ignore[arg-type]
            text, generation = tracing.token(acc)
            await run.on_llm_new_token(text, chunk=generation)
            yield acc
        await tracing.aend_chat_run(run, plan.call.record, acc if acc is not None else AIMessageChunk(content=""))

    def stream(
        self: SCOPERouter, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            yield ended(exc, chunk=True)
            return
        run, child = tracing.start_chat_run(self, config, plan.messages, plan.call.record, self._stop(stop))
        yield from self._traced_chunks(plan, run, child, stop)

    async def astream(
        self: SCOPERouter, input: LanguageModelInput, config: RunnableConfig | None = None, *,
        stop: list[str] | None = None, **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        try:
            plan, config = self._prepare(input, config, kwargs)
        except BudgetExceeded as exc:
            yield ended(exc, chunk=True)
            return
        run, child = await tracing.astart_chat_run(self, config, plan.messages, plan.call.record, self._stop(stop))
        chunks = self._atraced_chunks(plan, run, child, stop)
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    def _stream(
        self: SCOPERouter, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """For LangChain's own streaming paths (``stream_events(version="v3")``): LangChain opened the
        router's run and reports its chunks; the candidate nests under it."""
        try:
            plan = self._plan(list(messages), ensure_config(), kwargs)
        except BudgetExceeded as exc:
            yield ChatGenerationChunk(message=ended(exc, chunk=True))
            return
        child = tracing.nested_config(run_manager, plan.call.record)
        for chunk in self._candidate_chunks(plan, child, stop):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self: SCOPERouter, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        try:
            plan = self._plan(list(messages), ensure_config(), kwargs)
        except BudgetExceeded as exc:
            yield ChatGenerationChunk(message=ended(exc, chunk=True))
            return
        child = tracing.nested_config(run_manager, plan.call.record)
        chunks = self._acandidate_chunks(plan, child, stop)
        async with aclosing(chunks):
            async for chunk in chunks:
                yield ChatGenerationChunk(message=chunk)
