"""Evaluation: accuracy-cost curves of routers on a held-out routing table, their figures, and the
quality of estimators' predictions (see ``benchmarks/routing_quality.py`` for the full benchmark)."""

from scope_shared.evaluation.curves import (
    Reference,
    apgr,
    best_single_model,
    cheapest_model,
    cost_saving_at,
    cpt,
    hull_area,
    lagrangian_choice,
    oracle_choice,
    oracle_upper_bound,
    reference,
    step_area,
    summarize,
)
from scope_shared.evaluation.points import Point, accuracy_at, choice_point, curve, frontier, hull, model_points
from scope_shared.metrics import auroc, brier, ece, length_errors, median_abs_rel_error

__all__ = [
    "Point",
    "Reference",
    "accuracy_at",
    "apgr",
    "auroc",
    "best_single_model",
    "brier",
    "cheapest_model",
    "choice_point",
    "cost_saving_at",
    "cpt",
    "curve",
    "ece",
    "frontier",
    "hull",
    "hull_area",
    "lagrangian_choice",
    "length_errors",
    "median_abs_rel_error",
    "model_points",
    "oracle_choice",
    "oracle_upper_bound",
    "reference",
    "step_area",
    "summarize",
]
