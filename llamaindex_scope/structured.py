"""Structured outputs that keep SCOPE's account: ``SCOPELLM.as_structured_llm(...)`` responses carry it.

LlamaIndex's ``StructuredLLM`` answers with a fresh response holding the parsed object, so the
routed child's ``additional_kwargs["scope"]`` (the call id for feedback) was lost. `SCOPEStructuredLLM`
collects the routed calls made while it answers (`scope_shared.calls.collect_calls`) and puts the
last one's record back in ``response.additional_kwargs["scope"]``. For ``structured_predict``
(which returns the bare object), use ``with collect_calls() as calls:`` around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.llms.structured_llm import StructuredLLM

from scope_shared.calls import collect_calls


def _with_scope(response: Any, calls: list) -> Any:
    if calls:
        response.additional_kwargs["scope"] = calls[-1].metadata()
    return response


class SCOPEStructuredLLM(StructuredLLM):
    """``StructuredLLM`` over a `SCOPELLM` whose responses carry ``additional_kwargs["scope"]``."""

    @classmethod
    def class_name(cls) -> str:
        return "SCOPEStructuredLLM"

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        with collect_calls() as calls:
            return _with_scope(super().chat(messages, **kwargs), calls)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        with collect_calls() as calls:
            return _with_scope(await super().achat(messages, **kwargs), calls)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        with collect_calls() as calls:
            return _with_scope(super().complete(prompt, formatted=formatted, **kwargs), calls)

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        with collect_calls() as calls:
            return _with_scope(await super().acomplete(prompt, formatted=formatted, **kwargs), calls)
