"""The one streamed fallback loop (`scope_shared.calls.streams`), as both integrations use it:
fall back only before the first chunk, hold one chunk back for the final one, settle a stream that
stops early with what it produced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import pytest
from conftest import CARDS, toy_embedder, toy_history

from scope_shared import AllCandidatesFailed, Ledger, Router
from scope_shared.budget.settings import Settings, settings_for_call
from scope_shared.calls import RoutedCall, Usage, stop_reason
from scope_shared.calls.streams import StreamHooks, astream_in_order, stream_in_order


def _call(ledger: Ledger) -> RoutedCall:
    router = Router(CARDS, toy_history(), embedder=toy_embedder())
    return RoutedCall.plan(router, "math question 3", settings_for_call(Settings.read(ledger=ledger, tradeoff=0.0)))


def _hooks(call: RoutedCall, log: list) -> StreamHooks[str]:
    def finish(model: str, last: str | None, acc: str | None) -> str:
        call.succeeded(model, Usage(10, len(acc or "")))
        log.append(("finished", model, acc))
        return f"{last or ''}|end"

    def stopped(model: str, acc: str, why: BaseException) -> None:
        call.succeeded(model, Usage(10, len(acc)), stopped=stop_reason(why))
        log.append(("stopped", model, acc, stop_reason(why)))

    return StreamHooks(finish=finish, stopped=stopped)


def _source(chunks: list[str], fail_at: int | None = None) -> Iterator[str]:
    for i, c in enumerate(chunks):
        if i == fail_at:
            raise ConnectionError("dropped")
        yield c


def test_falls_back_before_the_first_chunk_and_holds_one_back_for_the_last():
    ledger, log = Ledger(10.0), []
    call = _call(ledger)
    first, second = call.decision.ranking[:2]
    sources = {first: lambda: _source(["x"], fail_at=0), second: lambda: _source(["a", "b", "c"])}
    out = list(stream_in_order(call, lambda m: sources[m](), _hooks(call, log)))
    assert out == ["a", "b", "c|end"]  # the last chunk carries what is known at the end
    assert log == [("finished", second, "abc")]
    assert [a.model for a in call.record.attempts] == [first, second] and ledger.calls == 1
    assert ledger.reserved == 0


def test_no_switch_after_the_first_chunk_a_failure_settles_what_was_produced():
    ledger, log = Ledger(10.0), []
    call = _call(ledger)
    out = []
    with pytest.raises(ConnectionError):
        for chunk in stream_in_order(call, lambda m: _source(["a", "b", "c"], fail_at=2), _hooks(call, log)):
            out.append(chunk)
    assert out == ["a", "b"]  # the chunk held back is delivered before the error
    assert log == [("stopped", call.decision.model, "ab", "failed: ConnectionError: dropped")]
    assert call.record.stopped and ledger.calls == 1 and ledger.reserved == 0


def test_closing_the_stream_settles_it_at_once():
    ledger, log = Ledger(10.0), []
    call = _call(ledger)
    stream = stream_in_order(call, lambda m: _source(["a", "b", "c", "d"]), _hooks(call, log))
    assert next(stream) == "a"
    stream.close()
    assert log == [("stopped", call.decision.model, "ab", "closed by the consumer")]
    assert ledger.reserved == 0


def test_every_candidate_failing_first_raises_all_failed_and_releases_holds():
    ledger, log = Ledger(10.0), []
    call = _call(ledger)
    with pytest.raises(AllCandidatesFailed):
        list(stream_in_order(call, lambda m: _source(["x"], fail_at=0), _hooks(call, log)))
    assert log == [] and ledger.reserved == 0 and ledger.calls == 0


async def _aslow(chunks: list[str]) -> AsyncIterator[str]:
    for c in chunks:
        await asyncio.sleep(0.01)
        yield c


async def test_async_stream_falls_back_and_aclose_settles_what_was_produced():
    ledger, log = Ledger(10.0), []
    call = _call(ledger)
    out = [c async for c in astream_in_order(call, lambda m: _aslow(["a", "b"]), _hooks(call, log))]
    assert out == ["a", "b|end"] and log[-1][0] == "finished"
    call2, log2 = _call(ledger), []
    chunks = astream_in_order(call2, lambda m: _aslow(["a", "b", "c"]), _hooks(call2, log2))
    async with aclosing(chunks):
        async for chunk in chunks:
            break
    assert chunk == "a" and log2 == [("stopped", call2.decision.model, "ab", "closed by the consumer")]
    assert ledger.reserved == 0 and ledger.calls == 2
