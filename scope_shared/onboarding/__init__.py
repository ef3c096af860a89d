"""Onboarding a new model: which anchor questions it should answer."""

from scope_shared.onboarding.anchor_choice import Suggestion, question_difficulty, suggest_questions

__all__ = ["Suggestion", "question_difficulty", "suggest_questions"]
