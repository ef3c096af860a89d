"""Stand-in LangChain chat models, for trying the integration and for tests (no API key, no network).

`PackAnswerChat` is a ``BaseChatModel`` over `scope_shared.testing.ScriptedAnswerer`: it answers the
anchor pack's questions in their real formats, right at ``skill``, with ``usage_metadata``, in the
spirit of LangChain's own fake chat models. Use it where a provider's chat model would go
(``init_chat_model("openai:gpt-4o-mini")``, ``ChatAnthropic(...)``)::

    from langchain_scope.testing import PackAnswerChat
    cheap = PackAnswerChat(model_name="gemma-2-9b-it", skill=0.45)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from scope_shared.testing import ScriptedAnswerer


class PackAnswerChat(BaseChatModel):
    """Answers the last human message as a scripted model of ``skill`` (overall or per benchmark)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str = "scripted"
    skill: float | dict[str, float] = 0.5
    verbosity: int = 0
    delay_s: float = 0.0
    fail_first: int = Field(default=0, description="the first calls raise a 429-like error (to exercise retries)")
    pack: Any = None
    _answerer: ScriptedAnswerer = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._answerer = ScriptedAnswerer(self.model_name, self.skill, self.pack, verbosity=self.verbosity,
                                          delay_s=self.delay_s, fail_first=self.fail_first)

    @property
    def answerer(self) -> ScriptedAnswerer:
        """The script: ``calls`` (question ids asked) and ``intended`` (meant right or wrong)."""
        return self._answerer

    @property
    def _llm_type(self) -> str:
        return "scope-pack-answer"

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        out = self._answerer(str(messages[-1].content))
        usage = {"input_tokens": out["input_tokens"], "output_tokens": out["output_tokens"],
                 "total_tokens": out["input_tokens"] + out["output_tokens"]}
        return AIMessage(content=out["text"], usage_metadata=usage, response_metadata={"model_name": self.model_name})

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        msg = self._reply(messages)
        yield ChatGenerationChunk(message=AIMessageChunk(content=str(msg.content), usage_metadata=msg.usage_metadata,
                                                         response_metadata=msg.response_metadata))


__all__ = ["PackAnswerChat"]
