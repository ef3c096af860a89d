"""The SCOPE paper's two-stage scorer and its budget mode, as pure functions (+ a router adapter).

For a trade-off ``alpha`` in [0, 1] (0 = cheapest, 1 = most accurate), with
``gamma = base_gamma * (1 + 2 * (1 - alpha))`` (base 2) and ``w = 0.3 * (0.5 + 0.5 * alpha)``:

- Stage I, from anchors: per (query, model), the similarity^2-weighted accuracy and cost of the
  model on its top-6 anchors; accuracy min-max normalised across the query's candidates, cost
  min-max normalised in log space across them (0.5 where all are equal):
  ``s1 = alpha * acc + (1 - alpha) * (1 - cost) ** gamma``.
- Stage II, from the estimator: ``s2 = alpha * p + (1 - alpha) * (1 - cost') ** gamma`` with the
  predicted cost min-max normalised (linearly) over the whole batch of queries and candidates.
  The paper uses the predictor's yes/no as ``p``; we use the estimator's ``p_correct`` (a yes/no
  predictor that is sampled once gives exactly 0 or 1; ``binary=True`` thresholds at 0.5).
- Final: ``w * s1 + (1 - w) * s2``; the best score wins.

Budget mode sweeps 101 alphas and keeps the one with the highest *predicted* accuracy whose
*predicted* total cost fits the budget (the authors' script picks alpha with the true outcomes of
the evaluated set, an oracle; we never look at outcomes). Works with any estimator.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scope_shared.errors import InvalidKnobError, InvalidSettingError
from scope_shared.history import Anchors

if TYPE_CHECKING:  # pragma: no cover
    from scope_shared.routing.router import Router

_EPS = 1e-9


def gamma(alpha: float, base: float = 2.0) -> float:
    return base * (1.0 + 2.0 * (1.0 - alpha))


def stage_one_weight(alpha: float, base: float = 0.3) -> float:
    return base * (0.5 + 0.5 * alpha)


def minmax(x: np.ndarray, axis: int | None = -1) -> np.ndarray:
    """Min-max scale along ``axis`` (``None``: over everything); 0.5 where the span is ~0 or x is NaN."""
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: handled below
        lo = np.nanmin(x, axis=axis, keepdims=True) if np.isfinite(x).any() else np.zeros_like(x)
        hi = np.nanmax(x, axis=axis, keepdims=True) if np.isfinite(x).any() else np.zeros_like(x)
        span = hi - lo
        out = np.where(span > _EPS, (x - lo) / np.where(span > _EPS, span, 1.0), 0.5)
    return np.where(np.isfinite(out), out, 0.5)


@dataclass(frozen=True)
class AnchorStats:
    """Stage I inputs: similarity^2-weighted accuracy and USD cost per (query, model), (n_q, n_m)."""

    accuracy: np.ndarray
    cost: np.ndarray


def anchor_stats(
    anchors: Anchors,
    input_price: np.ndarray,
    output_price: np.ndarray,
    anchor_input_tokens: np.ndarray | None = None,
    default_output_tokens: np.ndarray | float = 256.0,
    top: int = 6,
    power: float = 2.0,
) -> AnchorStats:
    """Stage I statistics from the ``top`` most similar anchors of each (query, model).

    An anchor's cost is its input tokens (``anchor_input_tokens``, same shape as the anchors; 0 if
    not given) at the model's input price plus its output tokens (the model's default where unknown)
    at its output price, in USD. Similarities below 0 weigh nothing.
    """
    sl = (..., slice(0, top))
    mask = anchors.mask[sl]
    w = np.where(mask, np.maximum(anchors.sims[sl].astype(np.float64), 0.0) ** power, 0.0)
    wsum = w.sum(-1)
    scores = np.nan_to_num(anchors.scores[sl].astype(np.float64))
    out_tok = anchors.tokens[sl].astype(np.float64)
    default = np.broadcast_to(np.asarray(default_output_tokens, dtype=np.float64), out_tok.shape[:2])[..., None]
    out_tok = np.where(np.isfinite(out_tok), out_tok, default)
    in_tok = np.zeros_like(out_tok) if anchor_input_tokens is None else np.asarray(anchor_input_tokens, np.float64)[sl]
    cost = (in_tok * np.asarray(input_price)[None, :, None] + out_tok * np.asarray(output_price)[None, :, None]) / 1e6
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(wsum > 0, (w * scores).sum(-1) / wsum, np.nan)
        c = np.where(wsum > 0, (w * cost).sum(-1) / wsum, np.nan)
    return AnchorStats(acc, c)


def stage_one(alpha: float, stats: AnchorStats, base_gamma: float = 2.0) -> np.ndarray:
    """``alpha * acc + (1 - alpha) * (1 - cost) ** gamma`` with per-query normalisation (log cost)."""
    acc = minmax(stats.accuracy, axis=-1)
    cost = minmax(np.log(np.asarray(stats.cost, dtype=np.float64) + _EPS), axis=-1)
    return alpha * acc + (1.0 - alpha) * (1.0 - cost) ** gamma(alpha, base_gamma)


def stage_two(alpha: float, p: np.ndarray, pred_cost: np.ndarray, base_gamma: float = 2.0, binary: bool = False) -> np.ndarray:
    """``alpha * p + (1 - alpha) * (1 - cost) ** gamma`` with the cost normalised over the whole batch."""
    p = np.asarray(p, dtype=np.float64)
    if binary:
        p = (p >= 0.5).astype(np.float64)
    cost = minmax(pred_cost, axis=None)
    return alpha * p + (1.0 - alpha) * (1.0 - cost) ** gamma(alpha, base_gamma)


def two_stage_scores(
    alpha: float,
    p: np.ndarray,
    pred_cost: np.ndarray,
    stats: AnchorStats | None,
    stage1_weight: float = 0.3,
    base_gamma: float = 2.0,
    binary: bool = False,
) -> np.ndarray:
    """Final scores (n_q, n_m); without anchor statistics, Stage II alone."""
    if not 0.0 <= alpha <= 1.0:
        raise InvalidKnobError(f"alpha must be in [0, 1], got {alpha}")
    s2 = stage_two(alpha, p, pred_cost, base_gamma, binary)
    if stats is None:
        return s2
    w = stage_one_weight(alpha, stage1_weight)
    return w * stage_one(alpha, stats, base_gamma) + (1.0 - w) * s2


@dataclass(frozen=True)
class BudgetChoice:
    """Budget mode's pick: the alpha, its predicted accuracy and total cost, and the whole sweep."""

    alpha: float
    predicted_accuracy: float
    predicted_cost: float
    fits: bool
    sweep: list[dict[str, float]]


def budget_alpha(
    budget: float,
    p: np.ndarray,
    pred_cost: np.ndarray,
    stats: AnchorStats | None,
    n_alphas: int = 101,
    **score_kwargs: Any,
) -> BudgetChoice:
    """The most accurate alpha (by predicted p) whose predicted total cost fits ``budget`` (USD).

    ``p`` and ``pred_cost`` are the predictions for the questions the budget covers. If no alpha
    fits, the cheapest one is returned with ``fits=False``.
    """
    if not np.isfinite(budget) or budget < 0:
        raise InvalidKnobError(f"budget must be a finite number >= 0, got {budget}")
    p = np.asarray(p, dtype=np.float64)
    pred_cost = np.asarray(pred_cost, dtype=np.float64)
    rows = np.arange(len(p))
    sweep = []
    for a in np.linspace(0.0, 1.0, n_alphas):
        pick = two_stage_scores(float(a), p, pred_cost, stats, **score_kwargs).argmax(1)
        sweep.append({"alpha": float(a), "accuracy": float(p[rows, pick].mean()), "cost": float(pred_cost[rows, pick].sum())})
    fitting = [s for s in sweep if s["cost"] <= budget + 1e-12]
    if fitting:
        best = max(fitting, key=lambda s: (s["accuracy"], -s["cost"]))
    else:
        best = min(sweep, key=lambda s: (s["cost"], -s["accuracy"]))
    return BudgetChoice(best["alpha"], best["accuracy"], best["cost"], bool(fitting), sweep)


class TwoStageScorer:
    """The two-stage scorer for a `Router` (its ``batch_scorer``): the ``alpha`` knob then uses it.

    ``Router(cards, history, estimator=..., batch_scorer=TwoStageScorer())``. Stage I anchors are
    retrieved from the router's history (top ``top``); Stage II uses the router's estimates and
    expected costs (input + output, where the paper uses output cost only).
    """

    def __init__(self, top: int = 6, power: float = 2.0, stage1_weight: float = 0.3, base_gamma: float = 2.0, binary: bool = False) -> None:
        if top < 1:
            raise InvalidSettingError("top must be >= 1")
        self.top, self.power = top, power
        self.score_kwargs = {"stage1_weight": stage1_weight, "base_gamma": base_gamma, "binary": binary}

    def stats(self, router: "Router", embs: np.ndarray, models: Sequence[str]) -> AnchorStats:
        anchors = router.history.anchors(embs, list(models), self.top)
        count: Callable[[str], float] = router.count_tokens
        uniq = np.unique(anchors.ids[anchors.mask])  # each anchor question counted once
        in_tok = np.zeros(anchors.ids.shape)
        if len(uniq):
            counts = np.array([float(count(router.history.text(int(q)))) for q in uniq])
            pos = np.searchsorted(uniq, np.where(anchors.mask, anchors.ids, uniq[0]))
            in_tok = np.where(anchors.mask, counts[pos], 0.0)
        cards = [router.cards[m] for m in models]
        default = np.array([[c.default_output_tokens or router.default_output_tokens for c in cards]])
        med = np.array([[router.history.model_stats(m)["median_output_tokens"] for m in models]])
        default = np.where(np.isfinite(med), med, default)
        return anchor_stats(
            anchors,
            np.array([c.input_price for c in cards]),
            np.array([c.output_price for c in cards]),
            in_tok,
            default,
            self.top,
            self.power,
        )

    def rank_batch(
        self, router: "Router", embs: np.ndarray, models: Sequence[str], p: np.ndarray, cost: np.ndarray, alpha: float
    ) -> np.ndarray:
        """Candidate orders (n_q, n_m), best first (ties: cheaper first)."""
        scores = two_stage_scores(alpha, p, cost, self.stats(router, embs, models), **self.score_kwargs)
        return np.stack([np.lexsort((cost[i], -scores[i])) for i in range(len(scores))])

    def choose_alpha(self, router: "Router", queries: Sequence[str], budget: float, candidates: Sequence[str] | None = None) -> BudgetChoice:
        """Budget mode on ``queries`` (not your test set): alpha whose predicted total cost fits."""
        estimates = router.estimate_batch(queries, candidates)
        models = list(estimates[0])
        p = np.array([[e[m].p_correct for m in models] for e in estimates])
        cost = np.array([[e[m].expected_cost for m in models] for e in estimates])
        stats = self.stats(router, router.embed(queries), models)
        return budget_alpha(budget, p, cost, stats, **self.score_kwargs)
