"""Graders: one per metric of an anchor pack, plus an LLM judge.

| metric | grader | what scores 1 |
|---|---|---|
| ``multiple_choice`` | `MultipleChoiceGrader` | the answer names the right option, by label ("(B)") or by its text |
| ``exact_match`` | `ExactMatchGrader` | normalised answer == normalised reference |
| ``f1`` | `F1Grader` | token F1 (1 if the reference appears whole in the answer) |
| ``final_number`` | `FinalNumberGrader` | the answer's final number equals the reference (GSM8K) |
| ``math`` | `MathGrader` | the boxed / stated final answer is equivalent to the reference (MATH) |
| ``concept_coverage`` | `ConceptCoverageGrader` | share of the concepts used (CommonGen) |
| ``code`` | `CodeGrader` | the code passes the tests, graded in a sandbox (opt-in: ``run_code=True``) |
| ``judge`` | `LLMJudgeGrader` | a chat model says so |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from scope_shared.errors import OnboardingError
from scope_shared.onboarding.graders.base import FunctionGrader, Grade, Grader
from scope_shared.onboarding.graders.code import CodeGrader, build_answer, build_program, extract_code
from scope_shared.onboarding.graders.judge import LLMJudgeGrader, parse_verdict
from scope_shared.onboarding.graders.math_answers import FinalNumberGrader, MathGrader, math_equivalent
from scope_shared.onboarding.graders.sandbox import SandboxResult, run_python, run_tests, sandbox_support
from scope_shared.onboarding.graders.text import (
    ConceptCoverageGrader,
    ExactMatchGrader,
    F1Grader,
    MultipleChoiceGrader,
    extract_choice,
    normalize_text,
    token_f1,
)
from scope_shared.onboarding.questions import AnchorQuestion, canonical_metric


def default_graders(run_code: bool | Literal["unsafe"] = False, judge: Any = None, code_timeout_s: float = 10.0) -> dict[str, Grader]:
    """The built-in graders by metric; ``code`` only with ``run_code=True`` (where the sandbox works,
    else an error saying how to install it) or ``run_code="unsafe"`` (no sandbox, loudly), ``judge``
    only with a ``judge`` chat model."""
    if run_code not in (True, False, "unsafe"):
        raise OnboardingError(f"run_code must be True, False or 'unsafe', got {run_code!r}")
    graders: dict[str, Grader] = {
        "multiple_choice": MultipleChoiceGrader(),
        "exact_match": ExactMatchGrader(),
        "f1": F1Grader(),
        "final_number": FinalNumberGrader(),
        "math": MathGrader(),
        "concept_coverage": ConceptCoverageGrader(),
    }
    if run_code:
        graders["code"] = CodeGrader(timeout_s=code_timeout_s, unsafe=run_code == "unsafe")
    if judge is not None:
        graders["judge"] = judge if isinstance(judge, Grader) else LLMJudgeGrader(judge)
    return graders


def merge_graders(base: Mapping[str, Grader], overrides: Mapping[str, Any] | None) -> dict[str, Grader]:
    """``base`` with the user's graders (by metric name or alias; functions are wrapped) on top."""
    out = dict(base)
    for metric, g in (overrides or {}).items():
        key = canonical_metric(metric)
        if isinstance(g, Grader):
            out[key] = g
        elif callable(g):
            out[key] = FunctionGrader(g, key)
        else:
            raise OnboardingError(f"grader for {metric!r} must be a Grader or a function (answer, question) -> score")
    return out


def grade_answer(answer: str, question: AnchorQuestion, graders: Mapping[str, Grader] | None = None) -> Grade:
    """Grade one answer with the grader for its question's metric (default: the built-ins)."""
    graders = default_graders() if graders is None else graders
    grader = graders.get(question.metric)
    if grader is None:
        raise OnboardingError(f"no grader for metric {question.metric!r} (question #{question.id})")
    return grader.grade(answer, question)


__all__ = [
    "CodeGrader",
    "ConceptCoverageGrader",
    "ExactMatchGrader",
    "F1Grader",
    "FinalNumberGrader",
    "FunctionGrader",
    "Grade",
    "Grader",
    "LLMJudgeGrader",
    "MathGrader",
    "MultipleChoiceGrader",
    "SandboxResult",
    "build_answer",
    "build_program",
    "default_graders",
    "extract_choice",
    "extract_code",
    "grade_answer",
    "math_equivalent",
    "merge_graders",
    "normalize_text",
    "parse_verdict",
    "run_python",
    "run_tests",
    "sandbox_support",
    "token_f1",
]
