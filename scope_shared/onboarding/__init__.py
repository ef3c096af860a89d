"""Onboarding a new model: the anchor pack, graders, and `onboard` (ask, grade, record, report).

Quick start (offline, with a scripted stand-in for a real chat model)::

    from scope_shared import Router, load_pack, onboard
    from scope_shared.testing import ScriptedAnswerer   # or your chat model / LLM / "provider:model"

    history = load_pack().history()                     # bundled llmrouter-9 pack, no embedder needed
    result = onboard(ScriptedAnswerer("mine", skill=0.7),
                     {"name": "mine", "input_price": 0.2, "output_price": 0.6},
                     history=history, max_spend=0.10, feedback_log="onboarding.log")
    print(result.report)
    router = Router([result.card], history)              # a router over only your own model(s)
"""

from scope_shared.onboarding.anchor_choice import (
    AnchorDifficultyWarning,
    Suggestion,
    question_difficulty,
    sample_anchors,
    suggest_questions,
)
from scope_shared.onboarding.clients import ModelClient, Reply, RetryPolicy, as_client
from scope_shared.onboarding.graders import (
    Grade,
    Grader,
    LLMJudgeGrader,
    default_graders,
    grade_answer,
)
from scope_shared.onboarding.pack import AnchorPack, bundled_packs, load_pack
from scope_shared.onboarding.questions import (
    METRICS,
    AnchorQuestion,
    Choices,
    render_prompt,
)
from scope_shared.onboarding.report import (
    AccuracyReport,
    AccuracyRow,
    OnboardingReport,
    accuracy_report,
    estimated_accuracy,
)
from scope_shared.onboarding.runner import (
    DEFAULT_ANCHORS,
    ONBOARDING_SOURCE,
    AnchorResult,
    OnboardingPlan,
    OnboardingResult,
    choose_anchors,
    onboard,
)

__all__ = [
    "DEFAULT_ANCHORS",
    "AnchorDifficultyWarning",
    "METRICS",
    "ONBOARDING_SOURCE",
    "AccuracyReport",
    "AccuracyRow",
    "AnchorPack",
    "AnchorQuestion",
    "AnchorResult",
    "Choices",
    "Grade",
    "Grader",
    "LLMJudgeGrader",
    "ModelClient",
    "OnboardingPlan",
    "OnboardingReport",
    "OnboardingResult",
    "Reply",
    "RetryPolicy",
    "Suggestion",
    "accuracy_report",
    "as_client",
    "bundled_packs",
    "choose_anchors",
    "default_graders",
    "estimated_accuracy",
    "grade_answer",
    "load_pack",
    "onboard",
    "question_difficulty",
    "render_prompt",
    "sample_anchors",
    "suggest_questions",
]
