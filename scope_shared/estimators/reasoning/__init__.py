"""The SCOPE paper's reasoning predictor: prompt, strict parser, backends, estimator, training."""

from scope_shared.estimators.reasoning.backends import LangChainBackend, ReasoningBackend, Sample, TransformersBackend
from scope_shared.estimators.reasoning.estimator import ReasoningEstimator
from scope_shared.estimators.reasoning.parser import ParsedPrediction, PredictionParseError, parse_prediction
from scope_shared.estimators.reasoning.prompt import DEFAULT_TEMPLATE, AnchorExample, build_prompt, parse_prompt

__all__ = [
    "DEFAULT_TEMPLATE",
    "AnchorExample",
    "LangChainBackend",
    "ParsedPrediction",
    "PredictionParseError",
    "ReasoningBackend",
    "ReasoningEstimator",
    "Sample",
    "TransformersBackend",
    "build_prompt",
    "parse_prediction",
    "parse_prompt",
]
