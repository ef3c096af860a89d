"""Stand-in chat models for the onboarding tests, importable by the CLI
(``scope onboard --model-object standin_models:tiny``): scripted to answer the pack's questions in
their real formats, right at different rates, with usage metadata, at different prices."""

from __future__ import annotations

import os
from typing import Any

from langchain_scope.testing import PackAnswerChat
from scope_shared.onboarding.scripted import ScriptedAnswerer

MATHS = ("math", "gsm8k", "agentverse-mgsm")
STANDINS: dict[str, dict[str, Any]] = {
    "tiny-1b": {"skill": {"*": 0.2, "trivia_qa": 0.8, "natural_qa": 0.7}, "price": (0.05, 0.10), "verbosity": 0},
    "maths-7b": {"skill": {"*": 0.35, **{b: 0.95 for b in MATHS}}, "price": (0.30, 0.60), "verbosity": 40},
    "big-70b": {"skill": 0.9, "price": (2.00, 6.00), "verbosity": 120},
}


def card(name: str) -> dict[str, Any]:
    inp, out = STANDINS[name]["price"]
    return {"name": name, "input_price": inp, "output_price": out}


def chat(name: str, **kwargs: Any) -> PackAnswerChat:
    spec = STANDINS[name]
    return PackAnswerChat(model_name=name, skill=spec["skill"], verbosity=spec["verbosity"], **kwargs)


def tiny() -> PackAnswerChat:
    return chat("tiny-1b")


def maths() -> PackAnswerChat:
    return chat("maths-7b")


def big() -> PackAnswerChat:
    return chat("big-70b")


class RecordingModel:
    """A slow scripted model (a plain callable) that appends each answered question id to a file,
    fsynced, so a test can see which calls a killed run made."""

    def __init__(self, path: str, delay_s: float = 0.3) -> None:
        self.path = path
        self.inner = ScriptedAnswerer("slow-3b", 0.6, delay_s=delay_s)

    def __call__(self, prompt: str) -> dict[str, Any]:
        out = self.inner(prompt)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{self.inner.calls[-1]}\n")
            f.flush()
            os.fsync(f.fileno())
        return out


def recording() -> RecordingModel:
    return RecordingModel(os.environ["SCOPE_TEST_CALLS"], float(os.environ.get("SCOPE_TEST_DELAY", "0.3")))
