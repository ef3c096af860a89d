"""Evaluation: accuracy-cost points and curves of routers on a held-out routing table."""

from scope_shared.evaluation.points import Point, choice_point, model_points

__all__ = ["Point", "choice_point", "model_points"]
