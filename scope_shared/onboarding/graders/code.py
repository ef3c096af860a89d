"""Grading code answers by running them against the question's tests, confined (see `sandbox`).

The answer's code is read from its ```python fences (or ``[BEGIN] ... [DONE]``, else the whole
reply). For a function stub (HumanEval style) the stub comes first, so its imports and helpers are
there, and the answer's code after it, so its definition wins; a bare function body is indented
under the stub. Then the tests run, in a harness apart from the answer; the answer scores 1 if they
all pass within the limits.
"""

from __future__ import annotations

import re
import textwrap

from scope_shared.errors import OnboardingError
from scope_shared.onboarding.graders.base import Grade, Grader
from scope_shared.onboarding.graders.sandbox import run_tests, sandbox_support, warn_unsafe
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


def build_answer(answer: str, question: AnchorQuestion) -> str:
    """The answer's side of a code grade: (the stub,) then the answer's code."""
    code = extract_code(answer, question.entry_point)
    stub = question.text if "def " in question.text else None
    if stub is not None:
        defines = question.entry_point and re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(question.entry_point)}\s*\(", code, re.M)
        if not defines:  # a function body: indent it under the stub
            code = stub.rstrip() + "\n" + textwrap.indent(textwrap.dedent(code), "    ")
        else:
            code = stub.rstrip() + "\n\n\n" + code
    return code


def build_program(answer: str, question: AnchorQuestion) -> str:
    """The whole program a code answer amounts to: (stub,) the answer's code, then the tests."""
    return f"{build_answer(answer, question)}\n\n\n{question.tests}\n"


class CodeGrader(Grader):
    """1 if the answer passes the question's tests, graded in the sandbox (opt-in; Linux with bubblewrap).

    The tests run in a harness process apart from the answer's (see `sandbox`), so the score cannot
    be forged from inside the answer. ``unsafe=True`` runs without the sandbox's namespaces, loudly.
    """

    metric = "code"

    def __init__(self, timeout_s: float = 10.0, memory_mb: int = 512, unsafe: bool = False) -> None:
        if unsafe:
            warn_unsafe()
        else:
            ok, why = sandbox_support()
            if not ok:
                raise OnboardingError(f"code grading is off here: {why}")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.unsafe = unsafe

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        stub = question.text if "def " in question.text else None
        result = run_tests(build_answer(answer, question), question.tests or "", self.timeout_s, self.memory_mb,
                           stub=stub, entry_point=question.entry_point, unsafe=self.unsafe)
        return Grade(float(result.passed), None, result.detail)
