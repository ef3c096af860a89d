"""Onboarding a new model: which anchor questions it should answer, and what its outcomes say."""

from scope_shared.onboarding.anchor_choice import (
    Suggestion,
    choose_anchors,
    question_difficulty,
    suggest_questions,
)
from scope_shared.onboarding.report import (
    AccuracyEstimate,
    AccuracyReport,
    accuracy_report,
)

__all__ = [
    "AccuracyEstimate",
    "AccuracyReport",
    "Suggestion",
    "accuracy_report",
    "choose_anchors",
    "question_difficulty",
    "suggest_questions",
]
