"""Stand-ins for real models, for trying the library and for tests: no API key, no network.

A scripted model answers the anchor pack's questions in each real format (a letter, a worked number,
a ``\\boxed{}`` answer, code), right at a set rate (``skill``, overall or per benchmark), and reports
token usage like a provider. Anything else it is asked gets a short fixed reply. Where a real model
would go (``onboard``, ``SCOPERouter`` candidates, ``SCOPELLM`` LLMs) put one of these to run an
example offline; put your provider's model there for real answers.

- `ScriptedAnswerer`: a plain function-style model (``model(prompt) -> {"text", "input_tokens",
  "output_tokens"}``), accepted by `scope_shared.onboard`; no framework needed.
- ``langchain_scope.testing.PackAnswerChat``: the same as a LangChain chat model.
- ``llamaindex_scope.testing.PackAnswerLLM``: the same as a LlamaIndex LLM.
"""

from scope_shared.onboarding.scripted import ScriptedAnswerer, ScriptedRateLimitError

__all__ = ["ScriptedAnswerer", "ScriptedRateLimitError"]
