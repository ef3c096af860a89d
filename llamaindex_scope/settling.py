"""Settling a routed LlamaIndex call once a child answered: real usage, response metadata, events.

The usage is what the child reported (`llamaindex_scope.messages.reported_usage`), else counted with
the router's token counter (then flagged ``counted``). The call's record (`CallRecord.metadata()`)
goes into ``additional_kwargs["scope"]`` and ``raw["scope"]`` (when the child's raw is empty or a
dict), to the calls collector (`collect_calls`) and out as a `SCOPECostEvent`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llama_index.core.base.llms.types import ChatResponse, CompletionResponse
from llama_index.core.instrumentation.span import active_span_id

from llamaindex_scope.attempts import Settle
from llamaindex_scope.events import emit_settled
from llamaindex_scope.messages import reported_usage, response_text
from scope_shared.calls import RoutedCall, Usage, note_call
from scope_shared.tokens import TokenCounter

Response = ChatResponse | CompletionResponse


def response_usage(response: Response | None, input_text: str, output_text: str, count: TokenCounter) -> Usage:
    """The tokens a child's call used: reported, else counted from what was sent and produced."""
    reported = None if response is None else reported_usage(response)
    if reported is not None:
        return reported
    return Usage(
        input_tokens=float(count(input_text)) if input_text else 0.0,
        output_tokens=float(count(output_text)) if output_text else 0.0,
        counted=True,
    )


def annotate(response: Response, meta: dict[str, Any]) -> None:
    """Write the call's record into the response (``additional_kwargs`` and a dict ``raw``)."""
    response.additional_kwargs["scope"] = meta
    if response.raw is None:
        response.raw = {"scope": meta}
    elif isinstance(response.raw, Mapping):
        response.raw = {**response.raw, "scope": meta}


def settler(
    call: RoutedCall, input_text: str, count: TokenCounter, answered: Callable[[str], None]
) -> Settle:
    """How ``call`` settles once ``model`` answered (``stopped``: a stream that ended early, with
    what it produced): real cost, response metadata, the cost event; ``answered(model)`` is told."""
    span = active_span_id.get()  # a stream settles after the LLM span has closed

    def settle(model: str, response: Response | None, stopped: str | None) -> None:
        out = "" if response is None else response_text(response)
        record = call.succeeded(model, response_usage(response, input_text, out, count), stopped=stopped)
        answered(model)
        if response is not None:
            annotate(response, record.metadata())
        note_call(record)
        emit_settled(record, "llm", ledger=call.ledger, span_id=span)

    return settle
