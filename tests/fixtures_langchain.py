"""Fake chat models standing in for remote APIs in the LangChain tests.

`ScriptedChat` records every call (messages and keyword arguments), reports usage (or not),
can fail on demand, streams word by word, and implements ``bind_tools`` (it calls the tool with
arguments filled from the schema's types, then answers in words after the tool result came back)
and ``with_structured_output`` by every method. `NoToolsChat` cannot bind tools.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

from conftest import CARDS, toy_embedder, toy_history
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from fixtures_schema import fill
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableMap, RunnablePassthrough
from langchain_core.tracers.base import BaseTracer
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, Field

from scope_shared import Router

NAMES = ("cheap", "mid", "strong")


class ScriptedChat(BaseChatModel):
    """A fake chat model: answers "<label> says ...", records calls, optionally fails.

    Like a provider's model it calls a bound tool (the one ``tool_choice`` names, else the first)
    with arguments filled from the tool's schema types and the request (`fixtures_schema.fill`),
    answers in words once the tool result is back, and does structured output by every method
    (tools, JSON schema, JSON mode).
    """

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

    def with_structured_output(
        self, schema: Any, *, method: str = "function_calling", include_raw: bool = False, strict: Any = None, **kwargs: Any
    ) -> Any:
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        llm = self.bind(
            response_format={"type": method, "schema": convert_to_json_schema(schema)},
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        is_model = isinstance(schema, type) and issubclass(schema, BaseModel)
        parser = PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
        if include_raw:
            return RunnableMap(raw=llm) | RunnablePassthrough.assign(
                parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
            )
        return llm | parser

    def _reply(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage:
        self.calls.append({"messages": list(messages), "kwargs": dict(kwargs)})
        if self.fail:
            self.fail -= 1 if self.fail > 0 else 0
            raise RuntimeError(f"{self.label} is down")
        tools, fmt = kwargs.get("tools"), kwargs.get("response_format")
        meta = {"model_name": self.provider_model_name} if self.provider_model_name else {}
        usage = {"input_tokens": 12, "output_tokens": 34, "total_tokens": 46} if self.usage else None
        request = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        if fmt:
            return AIMessage(content=json.dumps(fill(fmt["schema"], request)), response_metadata=meta, usage_metadata=usage)
        if tools and not isinstance(messages[-1], ToolMessage):
            choice = kwargs.get("tool_choice")
            named = [t for t in tools if isinstance(choice, str) and t["function"]["name"] == choice]
            fn = (named or tools)[0]["function"]
            args = fill(fn.get("parameters", {}), request)
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
        if msg.tool_calls:
            chunks = [{"content": "", "tool_call_chunks": [
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                for i, c in enumerate(msg.tool_calls)
            ]}]
        elif str(msg.content).startswith("{"):
            chunks = [{"content": msg.content}]
        else:
            words = str(msg.content).split(" ")
            chunks = [{"content": w if i == len(words) - 1 else w + " "} for i, w in enumerate(words)]
        for i, part in enumerate(chunks):
            last = i == len(chunks) - 1
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    **part,
                    usage_metadata=msg.usage_metadata if last else None,
                    response_metadata=msg.response_metadata if last else {},
                    chunk_position="last" if last else None,
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


class FinishedRuns(BaseTracer):
    """A tracer keeping every run it finished (what LangSmith's tracer would post)."""

    def __init__(self) -> None:
        super().__init__()
        self.done: list[Any] = []

    def _persist_run(self, run: Any) -> None:
        pass

    def _end_trace(self, run: Any) -> None:
        self.done.append(run)
        super()._end_trace(run)


class RunLog(BaseCallbackHandler):
    """Records chain and chat-model starts (id, parent, name, metadata; tags of chat-model runs)."""

    def __init__(self) -> None:
        self.chains: list[dict[str, Any]] = []
        self.chat: list[dict[str, Any]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any) -> None:
        self.chains.append({"run_id": run_id, "parent": parent_run_id, "name": kw.get("name"), "metadata": kw.get("metadata") or {}})

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any, parent_run_id: Any = None, **kw: Any) -> None:
        self.chat.append({
            "run_id": run_id, "parent": parent_run_id, "name": kw.get("name") or serialized.get("name"),
            "metadata": kw.get("metadata") or {}, "tags": kw.get("tags") or [],
        })

    def routing_runs(self) -> list[dict[str, Any]]:
        """The router's runs: chat-model runs (a structured-output call's are chain runs)."""
        return [c for c in [*self.chat, *self.chains] if "scope_model" in c["metadata"]]

    def candidate_runs(self) -> list[dict[str, Any]]:
        return [c for c in self.chat if "scope_model" not in c["metadata"]]
