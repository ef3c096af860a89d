"""Policies: from estimates to a ranking of candidates, one `Policy` per knob kind.

A policy says, for its kind of knob, how candidates rank (`Policy.order`), the most one call may
cost under it (`Policy.call_cap`: only ``max_cost`` has one), why a candidate was chosen
(`Policy.why`) and how the knob is recorded in a decision (`Policy.record`). Everything that
differs between knob kinds lives here; the router asks `policy_for(knob)` and never looks at the
kind itself.

Each works on ``p`` (predicted correctness) and ``cost`` (expected USD), both shaped (n_models,).
``cap`` is the most a call may cost (the knob's own cap and what is left of the ledger); candidates
above it go last, cheapest first, so fallbacks prefer what still fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from scope_shared.routing.knobs import Knob

_TIE = 1e-12


def _lex(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Indices sorted by primary ascending, then secondary ascending (stable)."""
    return np.lexsort((secondary, primary))


def _most_accurate(p: np.ndarray, cost: np.ndarray) -> np.ndarray:
    return _lex(-p, cost)  # most accurate first, cheaper on ties


def _cheapest_qualifying(ok: np.ndarray, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Qualifying candidates cheapest first, then the rest most accurate first (none qualifying:
    most accurate first)."""
    if not ok.any():
        return _most_accurate(p, cost)
    return np.lexsort((cost, ~ok * (-p), ~ok))


@dataclass(frozen=True)
class Policy:
    """What one knob kind means. Subclasses set ``kind`` and override `order` and `why`."""

    kind: ClassVar[str]

    def order(self, value: float, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Candidates' indices best first under this knob, before any cap."""
        raise NotImplementedError

    def call_cap(self, value: float) -> float:
        """The most one call may cost under this knob (``inf``: the knob sets no cap)."""
        return math.inf

    def why(self, value: float, best: int, p: np.ndarray, cost: np.ndarray, cap: float, n_affordable: int) -> str:
        """Why candidate ``best`` was chosen, in words."""
        raise NotImplementedError

    def record(self, value: float) -> dict[str, float]:
        """How the knob appears in a decision and a call's record."""
        return {self.kind: value}


class MaxCost(Policy):
    kind = "max_cost"

    def order(self, value: float, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
        return _most_accurate(p, cost)

    def call_cap(self, value: float) -> float:
        return value

    def why(self, value: float, best: int, p: np.ndarray, cost: np.ndarray, cap: float, n_affordable: int) -> str:
        return f"most accurate of {n_affordable} candidate(s) within ${min(cap, value):.6f}"


class Tradeoff(Policy):
    kind = "tradeoff"

    def order(self, value: float, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
        return _lex(-(p - value * cost), cost)

    def why(self, value: float, best: int, p: np.ndarray, cost: np.ndarray, cap: float, n_affordable: int) -> str:
        return f"best p_correct - {value:g} x cost"


class MinAccuracy(Policy):
    kind = "min_accuracy"

    def order(self, value: float, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
        return _cheapest_qualifying(p >= value - _TIE, p, cost)

    def why(self, value: float, best: int, p: np.ndarray, cost: np.ndarray, cap: float, n_affordable: int) -> str:
        if p[best] >= value - _TIE:
            return f"cheapest predicted to reach {value:.2f}"
        return f"none predicted to reach {value:.2f}: most accurate"


class AccuracyMargin(Policy):
    """The cheapest candidate whose ``p_correct`` is within the margin of the best candidate's on
    this query: "as accurate as the best candidate, for less"."""

    kind = "accuracy_margin"

    def order(self, value: float, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
        return _cheapest_qualifying(p >= p.max() - value - _TIE, p, cost)

    def why(self, value: float, best: int, p: np.ndarray, cost: np.ndarray, cap: float, n_affordable: int) -> str:
        top = float(p.max())
        if p[best] >= top - value - _TIE:
            if value == 0:
                return "the best p_correct (the cheaper on ties)"
            return f"cheapest within {value:.2f} of the best p_correct ({top:.2f})"
        return f"none within {value:.2f} of the best p_correct ({top:.2f}) fits: most accurate that does"


def margin_choices(value: float | np.ndarray, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """`AccuracyMargin`'s first choice for many queries at once: ``p`` and ``cost`` (queries,
    candidates) in, the chosen column per query out (before any budget cap). ``value``: one margin,
    or one per query shaped (queries, 1)."""
    p, cost = np.asarray(p, np.float64), np.asarray(cost, np.float64)
    ok = p >= p.max(1, keepdims=True) - value - _TIE
    return np.where(ok, cost, np.inf).argmin(1)


class Alpha(Policy):
    kind = "alpha"

    def order(self, value: float, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
        return _lex(-alpha_score(value, p, cost), cost)

    def why(self, value: float, best: int, p: np.ndarray, cost: np.ndarray, cap: float, n_affordable: int) -> str:
        return f"best SCOPE score at alpha={value:g}"


#: the policy of every knob kind
POLICIES: dict[str, Policy] = {cls.kind: cls() for cls in (MaxCost, Tradeoff, MinAccuracy, AccuracyMargin, Alpha)}


def policy_for(knob: Knob) -> Policy:
    """The policy that gives ``knob`` its meaning."""
    return POLICIES[knob.kind]


def rank(knob: Knob, p: np.ndarray, cost: np.ndarray, cap: float = np.inf) -> np.ndarray:
    """Rank candidates under ``knob``; affordable ones (cost <= cap and the knob's own cap) come first."""
    p = np.asarray(p, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    policy = policy_for(knob)
    return cap_first(policy.order(knob.value, p, cost), cost, min(cap, policy.call_cap(knob.value)))


def cap_first(order: np.ndarray, cost: np.ndarray, cap: float) -> np.ndarray:
    """Keep ``order`` among candidates costing at most ``cap``; the rest after, cheapest first."""
    order = np.asarray(order)
    fits = cost[order] <= cap + 1e-15
    rest = order[~fits]
    return np.concatenate([order[fits], rest[np.argsort(cost[rest], kind="stable")]])


def alpha_score(alpha: float, p: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The SCOPE paper's per-query trade-off score (its Stage II form), for one query's candidates.

    ``alpha * p + (1 - alpha) * (1 - c)^gamma`` with ``c`` the cost min-max normalised in log space
    across candidates and ``gamma = 2 * (1 + 2 * (1 - alpha))``.
    """
    logc = np.log(np.maximum(cost, 1e-12))
    span = logc.max() - logc.min()
    c = (logc - logc.min()) / span if span > 0 else np.zeros_like(logc)
    gamma = 2.0 * (1.0 + 2.0 * (1.0 - alpha))
    return alpha * p + (1.0 - alpha) * (1.0 - c) ** gamma


def explain(knob: Knob, models: list[str], p: np.ndarray, cost: np.ndarray, best: int, cap: float, n_affordable: int) -> str:
    """A one-line human explanation of choosing ``models[best]``."""
    policy = policy_for(knob)
    why = policy.why(knob.value, best, p, cost, cap, n_affordable)
    if np.isfinite(cap) and not math.isfinite(policy.call_cap(knob.value)):
        why += f" (within ${cap:.6f} left)"
    return f"{models[best]}: p_correct={p[best]:.2f}, expected ${cost[best]:.6f} ({why})"
