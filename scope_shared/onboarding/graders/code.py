"""Grading code answers by running them against the question's tests, confined (see `sandbox`).

The answer's code is read from its ```python fences (or ``[BEGIN] ... [DONE]``, else the whole
reply). For a function stub (HumanEval style) the stub comes first, so its imports and helpers are
there, and the answer's code after it, so its definition wins; a bare function body is indented
under the stub. Then the tests run; the answer scores 1 if they all pass within the limits.
"""

from __future__ import annotations

import re
import textwrap

from scope_shared.errors import OnboardingError
from scope_shared.onboarding.graders.base import Grade, Grader
from scope_shared.onboarding.graders.sandbox import run_python, sandbox_support
from scope_shared.onboarding.questions import AnchorQuestion

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_BEGIN = re.compile(r"\[BEGIN\](.*?)(?:\[DONE\]|\[END\]|$)", re.DOTALL | re.IGNORECASE)


def extract_code(answer: str, entry_point: str | None = None) -> str:
    """The code in a reply: the fenced block defining ``entry_point`` (else the longest one), else
    a ``[BEGIN] ... [DONE]`` block, else the reply itself."""
    blocks = [b.strip("\n") for b in _FENCE.findall(answer)]
    if not blocks:
        blocks = [b.strip("\n") for b in _BEGIN.findall(answer) if b.strip()]
    if not blocks:
        return answer.strip("\n")
    if entry_point:
        defining = [b for b in blocks if re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", b, re.M)]
        if defining:
            return defining[0]
    return max(blocks, key=len)


def build_program(answer: str, question: AnchorQuestion) -> str:
    """The program run for a code answer: (stub,) the answer's code, then the tests."""
    code = extract_code(answer, question.entry_point)
    stub = question.text if "def " in question.text else None
    if stub is not None:
        defines = question.entry_point and re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(question.entry_point)}\s*\(", code, re.M)
        if not defines:  # a function body: indent it under the stub
            code = stub.rstrip() + "\n" + textwrap.indent(textwrap.dedent(code), "    ")
        else:
            code = stub.rstrip() + "\n\n\n" + code
    return f"{code}\n\n\n{question.tests}\n"


class CodeGrader(Grader):
    """1 if the answer passes the question's tests in the sandbox (opt-in; POSIX only)."""

    metric = "code"

    def __init__(self, timeout_s: float = 10.0, memory_mb: int = 512) -> None:
        ok, why = sandbox_support()
        if not ok:
            raise OnboardingError(f"code grading is off here: {why} (grade code questions with an LLM judge, or skip them)")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        result = run_python(build_program(answer, question), self.timeout_s, self.memory_mb)
        return Grade(float(result.passed), None, result.detail)
