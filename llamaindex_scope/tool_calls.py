"""Tool calls through `SCOPELLM`: only function-calling children compete, and the chosen one
prepares the tools in its own format.

`SCOPELLM._prepare_chat_with_tools` returns neutral arguments (messages plus the tool arguments,
`TOOL_KWARGS`); once the router has picked a child, `child_chat_kwargs` has that child prepare its
own chat arguments and `validated` has it check its response, as it would when called directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM

from llamaindex_scope.routing_text import without_markers

#: the tool arguments of a chat (``chat_with_tools`` and agents pass them); not the child's own kwargs
TOOL_KWARGS = ("tools", "allow_parallel_tool_calls", "tool_required", "verbose")


def tool_models(llms: Mapping[str, LLM]) -> list[str]:
    """The children that can take tools (function-calling LLMs that say so)."""
    return [
        n for n, llm in llms.items()
        if isinstance(llm, FunctionCallingLLM) and llm.metadata.is_function_calling_model
    ]


def pop_tool_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the tool arguments out of a chat's keyword arguments."""
    return {k: kwargs.pop(k) for k in TOOL_KWARGS if k in kwargs}


def child_chat_kwargs(
    llm: LLM, messages: Sequence[ChatMessage], rest: dict[str, Any], tool_args: dict[str, Any]
) -> dict[str, Any]:
    """The child's own chat arguments: with tools, prepared by the child in its own format."""
    messages = without_markers(messages)
    if not tool_args.get("tools"):
        return {"messages": messages, **rest}
    assert isinstance(llm, FunctionCallingLLM)
    return llm._prepare_chat_with_tools_compat(
        tool_args["tools"],
        chat_history=list(messages),
        verbose=tool_args.get("verbose", False),
        allow_parallel_tool_calls=tool_args.get("allow_parallel_tool_calls", False),
        tool_required=tool_args.get("tool_required", False),
        **rest,
    )


def validated(llm: LLM, response: ChatResponse, tool_args: dict[str, Any]) -> ChatResponse:
    """The child's response, checked by the child the way its ``chat_with_tools`` checks it."""
    if not tool_args.get("tools"):
        return response
    assert isinstance(llm, FunctionCallingLLM)
    return llm._validate_chat_with_tools_response(
        response,
        tool_args["tools"],
        allow_parallel_tool_calls=tool_args.get("allow_parallel_tool_calls", False),
    )
