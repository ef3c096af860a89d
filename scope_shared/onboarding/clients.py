"""Calling the model being onboarded, whatever it is: one prompt in, a `Reply` with real usage out.

`as_client` accepts a LangChain chat model (any ``Runnable`` that takes messages), a LlamaIndex
``LLM``, an ``init_chat_model``-style ``"provider:model"`` string (needs ``langchain`` and the
provider's package) or a plain callable ``prompt -> str | dict | (text, usage)``. Token usage is the
provider's (LangChain ``usage_metadata`` / ``response_metadata``, LlamaIndex ``raw`` /
``additional_kwargs``); when a provider reports none the tokens are counted locally and the reply
says so (``counted``). Usage records are read by `scope_shared.tokens.reported_tokens`, as the
integrations read them. Latency is wall-clock time of the call.

`call_with_retries` retries rate limits (HTTP 429, ``RateLimitError``, ...) and transient failures
(timeouts, 5xx) with exponential back-off and jitter, honouring a ``Retry-After`` header.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scope_shared.errors import OnboardingError
from scope_shared.tokens import (
    TokenCounter,
    approx_token_count,
    member,
    reported_tokens,
)


@dataclass(frozen=True)
class Reply:
    """One answer: its text, the tokens it used (``counted``: by us, not reported) and its latency."""

    text: str
    input_tokens: float
    output_tokens: float
    counted: bool
    latency_s: float


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b if isinstance(b, str) else str(member(b, "text") or "") for b in content)
    return "" if content is None else str(content)


class ModelClient:
    """Calls one model with a prompt; subclasses know a framework's call and usage conventions."""

    def __init__(self, name: str, token_counter: TokenCounter = approx_token_count) -> None:
        self.name = name
        self.count = token_counter

    def _call(self, prompt: str) -> tuple[str, tuple[float, float] | None]:
        raise NotImplementedError

    def __call__(self, prompt: str) -> Reply:
        t0 = time.perf_counter()
        text, usage = self._call(prompt)
        latency = time.perf_counter() - t0
        if usage is None:
            return Reply(text, float(self.count(prompt)), float(self.count(text)) if text else 0.0, True, latency)
        return Reply(text, usage[0], usage[1], False, latency)


class LangChainClient(ModelClient):
    """A LangChain chat model (or any Runnable over messages): ``invoke([HumanMessage(prompt)])``."""

    def __init__(self, model: Any, token_counter: TokenCounter = approx_token_count) -> None:
        name = next((str(v) for k in ("model_name", "model", "model_id") if isinstance(v := getattr(model, k, None), str) and v), None)
        super().__init__(name or type(model).__name__, token_counter)
        self.model = model

    def _call(self, prompt: str) -> tuple[str, tuple[float, float] | None]:
        from langchain_core.messages import HumanMessage

        msg = self.model.invoke([HumanMessage(content=prompt)])
        if isinstance(msg, str):
            return msg, None
        usage = member(msg, "usage_metadata") or None
        return _content_text(member(msg, "content")), reported_tokens(usage, member(msg, "response_metadata"))


class LlamaIndexClient(ModelClient):
    """A LlamaIndex ``LLM``: ``chat([ChatMessage(role="user", content=prompt)])``."""

    def __init__(self, llm: Any, token_counter: TokenCounter = approx_token_count) -> None:
        name = member(member(llm, "metadata"), "model_name")
        super().__init__(str(name) if name and name != "unknown" else type(llm).__name__, token_counter)
        self.llm = llm

    def _call(self, prompt: str) -> tuple[str, tuple[float, float] | None]:
        from llama_index.core.llms import ChatMessage

        resp = self.llm.chat([ChatMessage(role="user", content=prompt)])
        message = member(resp, "message")
        usage = reported_tokens(member(resp, "additional_kwargs"), member(message, "additional_kwargs"), member(resp, "raw"))
        return _content_text(member(message, "content")), usage


class CallableClient(ModelClient):
    """A plain function ``prompt -> str``, ``-> {"text", "input_tokens", "output_tokens"}`` or ``-> (text, usage)``."""

    def __init__(self, fn: Callable[[str], Any], name: str | None = None, token_counter: TokenCounter = approx_token_count) -> None:
        super().__init__(name or getattr(fn, "__name__", None) or type(fn).__name__, token_counter)
        self.fn = fn

    def _call(self, prompt: str) -> tuple[str, tuple[float, float] | None]:
        out = self.fn(prompt)
        if isinstance(out, str):
            return out, None
        if isinstance(out, tuple) and len(out) == 2:
            return _content_text(out[0]), reported_tokens(out[1])
        if isinstance(out, Mapping):
            return _content_text(out.get("text", out.get("content"))), reported_tokens(out)
        if hasattr(out, "content"):  # a message object
            return _content_text(out.content), reported_tokens(member(out, "usage_metadata"), member(out, "response_metadata"))
        raise OnboardingError(f"model function {self.name!r} returned {type(out).__name__}; return a str, a dict or (text, usage)")


def _init_chat_model(spec: str) -> Any:
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise OnboardingError(f"a model string like {spec!r} needs LangChain (pip install 'scope-router[langchain]') and the provider's package (e.g. langchain-openai)") from None
    try:
        return init_chat_model(spec)
    except Exception as exc:  # noqa: BLE001 - missing provider package, unknown provider, missing key: all told the same way
        raise OnboardingError(f"cannot create chat model {spec!r}: {exc}") from None


def as_client(model: Any, token_counter: TokenCounter = approx_token_count) -> ModelClient:
    """Wrap whatever is to be onboarded (see the module doc) as a `ModelClient`."""
    if isinstance(model, ModelClient):
        return model
    if isinstance(model, str):
        if ":" not in model:
            raise OnboardingError(f"model string {model!r} must read 'provider:model', e.g. 'openai:gpt-4o-mini'")
        client = LangChainClient(_init_chat_model(model), token_counter)
        client.name = model.split(":", 1)[1]
        return client
    try:
        from llama_index.core.base.llms.base import BaseLLM

        if isinstance(model, BaseLLM):
            return LlamaIndexClient(model, token_counter)
    except ImportError:  # LlamaIndex not installed (the [llamaindex] extra): not a LlamaIndex LLM
        pass
    try:
        from langchain_core.runnables import Runnable

        if isinstance(model, Runnable):
            return LangChainClient(model, token_counter)
    except ImportError:  # LangChain not installed (the [langchain] extra): not a LangChain model
        pass
    if callable(model):
        return CallableClient(model, token_counter=token_counter)
    raise OnboardingError(
        f"cannot call a {type(model).__name__}: pass a LangChain chat model, a LlamaIndex LLM, "
        "a 'provider:model' string or a function prompt -> text"
    )


# ---------------------------------------------------------------- retries
def _status(exc: BaseException) -> int | None:
    for obj in (exc, getattr(exc, "response", None)):
        for key in ("status_code", "status", "http_status", "code"):
            v = getattr(obj, key, None)
            if isinstance(v, int) and 100 <= v < 600:
                return v
    return None


def is_rate_limit(exc: BaseException) -> bool:
    """Does this error say "slow down" (HTTP 429, a RateLimitError, a quota/resource-exhausted error)?"""
    name = type(exc).__name__.lower()
    text = str(exc).lower()
    return (
        _status(exc) == 429
        or any(k in name for k in ("ratelimit", "toomanyrequests", "resourceexhausted"))
        or any(k in text for k in ("rate limit", "rate_limit", "too many requests"))
        or re.search(r"\b429\b", text) is not None
    )


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: a rate limit, a timeout, a dropped connection, a 5xx."""
    if is_rate_limit(exc) or isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    name = type(exc).__name__.lower()
    status = _status(exc)
    return (status is not None and status >= 500) or any(
        k in name for k in ("timeout", "connectionerror", "serviceunavailable", "internalserver", "overloaded")
    )


def retry_after(exc: BaseException) -> float | None:
    """Seconds a ``Retry-After`` header (on ``exc.response``) asks to wait, if any."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    value = (member(headers, "retry-after") or member(headers, "Retry-After")) if headers is not None else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass
class RetryPolicy:
    """Exponential back-off: wait ``base_s * 2**attempt`` (x jitter in [0.5, 1]), at most ``max_s``."""

    max_retries: int = 6
    base_s: float = 1.0
    max_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def wait(self, attempt: int, exc: BaseException) -> float:
        asked = retry_after(exc)
        delay = asked if asked is not None else self.base_s * (2**attempt) * random.uniform(0.5, 1.0)
        return min(max(delay, 0.0), self.max_s)


def call_with_retries(client: ModelClient, prompt: str, policy: RetryPolicy) -> tuple[Reply, int]:
    """Call ``client``; retry transient failures per ``policy``. Returns (reply, retries used)."""
    attempt = 0
    while True:
        try:
            return client(prompt), attempt
        except Exception as exc:  # the provider's error types are unknown here
            if not is_transient(exc) or attempt >= policy.max_retries:
                raise
            policy.sleep(policy.wait(attempt, exc))
            attempt += 1
