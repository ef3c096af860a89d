"""Fixtures for the LlamaIndex integration tests: stand-in LLMs that say who they are, an event collector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CARDS
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback

MODELS = [c.name for c in CARDS]  # "cheap", "mid", "strong"


class NamedLLM(CustomLLM):
    """A stand-in LLM: answers ``"[name] <n words>"``; can fail, or report token usage like a provider."""

    name: str
    words: int = 5
    fail: bool = False
    usage: tuple[int, int] | None = None
    calls: int = 0

    @classmethod
    def class_name(cls) -> str:
        return "NamedLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.name, context_window=4096, num_output=256)

    def _text(self) -> str:
        return f"[{self.name}] " + " ".join(["word"] * self.words)

    def _extra(self) -> dict[str, Any]:
        if self.usage is None:
            return {}
        return {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1]}

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.calls += 1
        if self.fail:
            raise RuntimeError(f"{self.name} is down")
        return CompletionResponse(text=self._text(), additional_kwargs=self._extra())

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self.calls += 1
        if self.fail:
            raise RuntimeError(f"{self.name} is down")
        parts = self._text().split(" ")

        def gen() -> CompletionResponseGen:
            text = ""
            for i, p in enumerate(parts):
                delta = p if i == 0 else " " + p
                text += delta
                yield CompletionResponse(text=text, delta=delta, additional_kwargs=self._extra())

        return gen()


def named_llms(**overrides: dict[str, Any]) -> dict[str, NamedLLM]:
    """One stand-in per toy model; ``overrides={"strong": {"fail": True}}``-style keyword per model."""
    return {m: NamedLLM(name=m, **overrides.get(m, {})) for m in MODELS}


class EventCollector(BaseEventHandler):
    """Keeps every instrumentation event it sees."""

    events: list[BaseEvent] = []

    @classmethod
    def class_name(cls) -> str:
        return "EventCollector"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, name: str) -> list[BaseEvent]:
        return [e for e in self.events if e.class_name() == name]


@pytest.fixture
def collector() -> Iterator[EventCollector]:
    """An event handler on LlamaIndex's root dispatcher, removed after the test."""
    root = get_dispatcher()
    handler = EventCollector(events=[])
    root.add_event_handler(handler)
    try:
        yield handler
    finally:
        root.event_handlers.remove(handler)
