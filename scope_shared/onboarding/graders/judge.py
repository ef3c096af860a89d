"""An LLM as the grader: any LangChain chat model (or anything `as_client` takes) judges an answer.

Use it for open-ended questions (metric ``judge``), or in place of a built-in grader, e.g. for code
questions where code cannot be run (``graders={"code": LLMJudgeGrader(chat)}``). The judge sees
the question, the reference answer (or the correct option, or the tests) and the answer, and must
end with ``VERDICT: CORRECT``, ``VERDICT: INCORRECT`` or ``SCORE: <0..1>``; anything else is
asked once more, then refused with an `OnboardingError` (the answer stays ungraded, not wrong).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from scope_shared.errors import OnboardingError
from scope_shared.onboarding.clients import RetryPolicy, as_client, call_with_retries
from scope_shared.onboarding.graders.base import Grade, Grader
from scope_shared.onboarding.questions import AnchorQuestion, render_prompt

JUDGE_PROMPT = """You are grading an answer to a question. Judge only whether the answer is correct; ignore style and length.

## Question
{question}

## Reference
{reference}

## Answer to grade
{answer}

Reason briefly, then end with exactly one line: "VERDICT: CORRECT" or "VERDICT: INCORRECT" (or "SCORE: x" with x between 0 and 1 for partial credit)."""

_VERDICT = re.compile(r"VERDICT:\s*\**\s*(CORRECT|INCORRECT)\b|SCORE:\s*\**\s*([01](?:\.\d+)?|\.\d+)", re.IGNORECASE)


def _reference(q: AnchorQuestion) -> str:
    if q.choices is not None and q.reference in q.choices.labels:
        return f"({q.reference}) {q.choices.text_of(q.reference)}"
    if q.metric == "code":
        return f"The answer is code that must pass these tests:\n{q.tests}"
    return q.reference or "(no reference: judge on the merits)"


def parse_verdict(text: str) -> float | None:
    """The judge's score from its last VERDICT / SCORE line, or None if it gave none."""
    hits = _VERDICT.findall(text)
    if not hits:
        return None
    verdict, score = hits[-1]
    if verdict:
        return 1.0 if verdict.upper() == "CORRECT" else 0.0
    value = float(score)
    return value if 0 <= value <= 1 else None


class LLMJudgeGrader(Grader):
    """Grades with a chat model; its token usage is summed in ``input_tokens`` / ``output_tokens``."""

    metric = "judge"

    def __init__(self, model: Any, prompt: str = JUDGE_PROMPT, retry: RetryPolicy | None = None) -> None:
        self.client = as_client(model)
        self.prompt = prompt
        self.retry = retry or RetryPolicy()
        self.input_tokens = 0.0
        self.output_tokens = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        ask = self.prompt.format(question=render_prompt(question), reference=_reference(question), answer=answer)
        for _ in range(2):
            reply, _retries = call_with_retries(self.client, ask, self.retry)
            with self._lock:
                self.calls += 1
                self.input_tokens += reply.input_tokens
                self.output_tokens += reply.output_tokens
            score = parse_verdict(reply.text)
            if score is not None:
                return Grade(score, None, f"judge {self.client.name}: {reply.text.strip().splitlines()[-1][:200]}")
        raise OnboardingError(f"judge {self.client.name!r} gave no VERDICT or SCORE line twice; last reply: {reply.text[-200:]!r}")
