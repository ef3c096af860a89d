"""Collect the routed calls made inside a block of code, for outputs that carry no metadata.

A structured output (a pydantic object), a retriever's nodes or a whole query-engine run have
nowhere to put SCOPE's call record; the block hands them over instead::

    with collect_calls() as calls:
        answer = llm.structured_predict(Answer, prompt, question=q)
    router.record_feedback(calls[-1].call_id, correct=1.0)

Context-local (threads and asyncio tasks see their own blocks); blocks nest, and a call is noted in
every block in force.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from scope_shared.routing.records import CallRecord

_blocks: ContextVar[tuple[list[CallRecord], ...]] = ContextVar("scope_collect_calls", default=())


@contextmanager
def collect_calls() -> Iterator[list[CallRecord]]:
    """Yield a list that fills with the record of every routed call answered inside the block."""
    calls: list[CallRecord] = []
    token = _blocks.set((*_blocks.get(), calls))
    try:
        yield calls
    finally:
        _blocks.reset(token)


def note_call(record: CallRecord) -> None:
    """Called by integrations when a routed call has been answered."""
    for calls in _blocks.get():
        calls.append(record)
