"""Fake chat models standing in for remote APIs in the LangChain tests.

`ScriptedChat` records every call (messages and keyword arguments), reports usage (or not),
can fail on demand, streams word by word, and implements ``bind_tools``: with tools bound it asks
for the first tool once, then answers in words after the tool result came back. `NoToolsChat`
cannot bind tools.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from conftest import CARDS, toy_embedder, toy_history
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from scope_shared import Router

NAMES = ("cheap", "mid", "strong")


class ScriptedChat(BaseChatModel):
    """A fake chat model: answers "<label> says ...", records calls, optionally fails."""

    label: str
    usage: bool = True
    fail: int = 0  # how many calls raise before it works (-1: always)
    provider_model_name: str | None = None
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _reply(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage:
        self.calls.append({"messages": list(messages), "kwargs": dict(kwargs)})
        if self.fail:
            self.fail -= 1 if self.fail > 0 else 0
            raise RuntimeError(f"{self.label} is down")
        tools = kwargs.get("tools")
        meta = {"model_name": self.provider_model_name} if self.provider_model_name else {}
        usage = {"input_tokens": 12, "output_tokens": 34, "total_tokens": 46} if self.usage else None
        if tools and not isinstance(messages[-1], ToolMessage):
            fn = tools[0]["function"]
            args = {p: 1 for p in fn.get("parameters", {}).get("properties", {})}
            return AIMessage(
                content="",
                tool_calls=[{"name": fn["name"], "args": args, "id": f"call_{len(self.calls)}"}],
                response_metadata=meta,
                usage_metadata=usage,
            )
        return AIMessage(content=f"{self.label} says the answer is 42", response_metadata=meta, usage_metadata=usage)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages, **kwargs))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        msg = self._reply(messages, **kwargs)
        words = str(msg.content).split(" ")
        for i, w in enumerate(words):
            last = i == len(words) - 1
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=w if last else w + " ",
                    usage_metadata=msg.usage_metadata if last else None,
                    response_metadata=msg.response_metadata if last else {},
                )
            )


class NoToolsChat(GenericFakeChatModel):
    """A fake chat model without tool support (``bind_tools`` is the base class's)."""


def no_tools_chat(label: str) -> NoToolsChat:
    return NoToolsChat(messages=itertools.cycle([AIMessage(content=f"{label} says hi")]))


def make_candidates(**overrides: BaseChatModel) -> dict[str, BaseChatModel]:
    cands: dict[str, BaseChatModel] = {n: ScriptedChat(label=n) for n in NAMES}
    cands.update(overrides)
    return cands


def make_router(embedder: Any = None) -> Router:
    return Router(CARDS, toy_history(), embedder=embedder or toy_embedder())


class RunLog(BaseCallbackHandler):
    """Records chain and chat-model starts (id, parent, name, metadata)."""

    def __init__(self) -> None:
        self.chains: list[dict[str, Any]] = []
        self.chat: list[dict[str, Any]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any) -> None:
        self.chains.append({"run_id": run_id, "parent": parent_run_id, "name": kw.get("name"), "metadata": kw.get("metadata") or {}})

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any) -> None:
        self.chat.append({"run_id": run_id, "parent": parent_run_id, "metadata": kw.get("metadata") or {}})

    def routing_runs(self) -> list[dict[str, Any]]:
        return [c for c in self.chains if "scope_model" in c["metadata"]]
