"""One routed LangChain call, decided but not yet made (`Plan`), and the replies built from it.

A plan holds what `SCOPERouter` sends (the messages without routing markers, the bound tools or
schema, the candidate's own arguments), the core's `RoutedCall`, and the candidates skipped for
lacking a capability. Its methods read a reply's real token usage and write the call's record into
what the caller gets back (``response_metadata["scope"]``), the same way on the invoke, stream,
generate and structured-output paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage

from langchain_scope.messages import usage_of
from scope_shared.calls import CallRecord, RoutedCall, Usage, stop_reason
from scope_shared.tokens import TokenCounter

if TYPE_CHECKING:
    from langchain_scope.structured import StructuredBinding
    from langchain_scope.tools import ToolBinding


@dataclass
class Plan:
    """One call, decided but not yet made."""

    messages: list[BaseMessage]
    call: RoutedCall
    binding: ToolBinding | StructuredBinding | None
    kwargs: dict[str, Any]
    count_tokens: TokenCounter
    skipped: dict[str, str] = field(default_factory=dict)

    def usage(self, model: str, message: BaseMessage | None) -> Usage:
        """The tokens ``model``'s reply used: reported by the provider, else counted locally."""
        return usage_of(message, self.messages, self.count_tokens)

    def scope_meta(self, record: CallRecord) -> dict[str, Any]:
        """What goes under ``response_metadata["scope"]``: the call's record and the skipped candidates."""
        return {**record.metadata(), "skipped": dict(self.skipped)}

    def finish(self, message: BaseMessage, model: str, record: CallRecord) -> AIMessage:
        """The candidate's reply with the call's record under ``response_metadata["scope"]``; the
        provider's ``model_name`` is kept (the card name fills it only when the provider gave none)."""
        meta = {"model_name": model, **message.response_metadata, "scope": self.scope_meta(record)}
        return message.model_copy(update={"response_metadata": meta})  # type: ignore[return-value]

    def final_chunk(self, model: str, last: AIMessageChunk | None, acc: AIMessageChunk | None) -> AIMessageChunk:
        """Settle a finished stream; its last chunk carries the record and ``chunk_position="last"``."""
        record = self.call.succeeded(model, self.usage(model, acc))
        last = last if last is not None else AIMessageChunk(content="")
        meta: dict[str, Any] = {"scope": self.scope_meta(record)}
        if acc is None or "model_name" not in acc.response_metadata:
            meta["model_name"] = model
        return last.model_copy(
            update={"response_metadata": {**last.response_metadata, **meta}, "chunk_position": "last"}
        )

    def settle_stopped(self, model: str, acc: AIMessageChunk, why: BaseException) -> None:
        """A stream that stopped after some chunks: charge what it produced (flagged partial)."""
        self.call.succeeded(model, self.usage(model, acc), stopped=stop_reason(why))
