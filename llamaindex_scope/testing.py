"""Stand-in LlamaIndex LLMs, for trying the integration and for tests (no API key, no network).

`PackAnswerLLM` is a LlamaIndex ``CustomLLM`` over `scope_shared.testing.ScriptedAnswerer`: it
answers the anchor pack's questions in their real formats, right at ``skill``, and reports token usage
(``prompt_tokens`` / ``completion_tokens``) as providers do. Use it where a provider's LLM would go
(``OpenAI(model="gpt-4o-mini")``, ``Anthropic(...)``)::

    from llamaindex_scope.testing import PackAnswerLLM
    small = PackAnswerLLM(model_name="gemma-2-9b-it", skill=0.45)
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import PrivateAttr

from scope_shared.testing import ScriptedAnswerer


class PackAnswerLLM(CustomLLM):
    """Answers the prompt as a scripted model of ``skill`` (overall or per benchmark)."""

    model_name: str = "scripted"
    skill: float | dict[str, float] = 0.5
    verbosity: int = 0
    _answerer: ScriptedAnswerer = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._answerer = ScriptedAnswerer(self.model_name, self.skill, verbosity=self.verbosity)

    @classmethod
    def class_name(cls) -> str:
        return "PackAnswerLLM"

    @property
    def answerer(self) -> ScriptedAnswerer:
        """The script: ``calls`` (question ids asked) and ``intended`` (meant right or wrong)."""
        return self._answerer

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model_name, context_window=32768, num_output=1024)

    def _reply(self, prompt: str) -> CompletionResponse:
        out = self._answerer(prompt)
        usage = {"prompt_tokens": out["input_tokens"], "completion_tokens": out["output_tokens"],
                 "total_tokens": out["input_tokens"] + out["output_tokens"]}
        return CompletionResponse(text=out["text"], additional_kwargs=usage)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._reply(prompt)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        reply = self._reply(prompt)

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=reply.text, delta=reply.text, additional_kwargs=reply.additional_kwargs)

        return gen()


__all__ = ["PackAnswerLLM"]
