"""GRPO rewards for the predictor (the paper's): format, correctness prediction, trapezoid length.

Reward functions follow TRL's ``reward_func(completions, **dataset_columns) -> list[float]``
convention, reading the ``true_length`` and ``true_correct`` columns built by `training`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scope_shared.estimators.reasoning.parser import PredictionParseError, parse_prediction


def trapezoid_length_reward(predicted: float, true: float) -> float:
    """1 within max(100, 0.25·l) tokens of the true length l, linear to 0 at max(200, 0.5·l) away."""
    full = max(100.0, 0.25 * true)
    zero = max(200.0, 0.5 * true)
    err = abs(float(predicted) - float(true))
    if err <= full:
        return 1.0
    if err >= zero:
        return 0.0
    return (zero - err) / (zero - full)


def completion_text(completion: Any) -> str:
    """TRL gives plain strings or, for conversational data, a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


def _parse(completion: Any):
    try:
        return parse_prediction(completion_text(completion))
    except PredictionParseError:
        return None


def format_reward(completions: Sequence[Any], **_: Any) -> list[float]:
    """1 when the answer has an analysis and a well-formed final prediction line, else 0."""
    out = []
    for c in completions:
        p = _parse(c)
        out.append(1.0 if p is not None and p.analysis else (0.5 if p is not None else 0.0))
    return out


def correctness_reward(completions: Sequence[Any], true_correct: Sequence[Any], **_: Any) -> list[float]:
    """1 when the predicted yes/no matches the target model's true outcome (0 if unparsable)."""
    out = []
    for c, truth in zip(completions, true_correct):
        p = _parse(c)
        out.append(float(p is not None and p.correct == bool(truth)))
    return out


def length_reward(completions: Sequence[Any], true_length: Sequence[float], **_: Any) -> list[float]:
    """The trapezoid length reward (0 if unparsable)."""
    out = []
    for c, truth in zip(completions, true_length):
        p = _parse(c)
        out.append(trapezoid_length_reward(p.length, float(truth)) if p is not None else 0.0)
    return out


PAPER_REWARDS = (format_reward, correctness_reward, length_reward)
