"""The grader interface: an answer and its question in, a score in [0, 1] out.

A grader is small on purpose: ``grade(answer, question) -> Grade``. Built-ins exist for every
metric of the bundled pack; anything else (your own rubric, an LLM judge) is one class or one
function away (`FunctionGrader`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from scope_shared.errors import OnboardingError
from scope_shared.onboarding.questions import AnchorQuestion


@dataclass(frozen=True)
class Grade:
    """A graded answer: ``score`` in [0, 1], what was read from the answer, and why."""

    score: float
    extracted: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.score, (int, float)) or not math.isfinite(self.score) or not 0 <= self.score <= 1:
            raise OnboardingError(f"a grade must be a number in [0, 1], got {self.score!r}")
        object.__setattr__(self, "score", float(self.score))


class Grader(ABC):
    """Grades answers to questions of one metric."""

    #: the metric this grader serves (one of `scope_shared.onboarding.questions.METRICS`, or your own)
    metric: str = ""

    @abstractmethod
    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        """Score ``answer`` (the model's reply text) to ``question``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FunctionGrader(Grader):
    """A plain function ``(answer, question) -> float | Grade`` as a grader."""

    def __init__(self, fn: Callable[[str, AnchorQuestion], float | Grade], metric: str = "custom") -> None:
        self._fn = fn
        self.metric = metric

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        out = self._fn(answer, question)
        return out if isinstance(out, Grade) else Grade(float(out))
