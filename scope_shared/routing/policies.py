"""Policies: from estimates to a ranking of candidates, under one knob. Pure functions over arrays.

Each takes ``p`` (predicted correctness) and ``cost`` (expected USD), both shaped (n_models,), and
returns the candidates' indices best first. ``cap`` is the most a call may cost (from ``max_cost`` and
the ledger); candidates above it go last, cheapest first, so fallbacks prefer what still fits.
"""

from __future__ import annotations

import numpy as np

from scope_shared.routing.knobs import Knob


def _lex(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Indices sorted by primary ascending, then secondary ascending (stable)."""
    return np.lexsort((secondary, primary))


def rank(knob: Knob, p: np.ndarray, cost: np.ndarray, cap: float = np.inf) -> np.ndarray:
    """Rank candidates under ``knob``; affordable ones (cost <= cap) always come first."""
    p = np.asarray(p, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if knob.kind == "max_cost":
        cap = min(cap, knob.value)
        order = _lex(-p, cost)  # most accurate first, cheaper on ties
    elif knob.kind == "tradeoff":
        order = _lex(-(p - knob.value * cost), cost)
    elif knob.kind == "min_accuracy":
        ok = p >= knob.value - 1e-12
        if ok.any():
            order = np.lexsort((cost, ~ok * (-p), ~ok))  # qualifying: cheapest first; then most accurate
        else:
            order = _lex(-p, cost)
    elif knob.kind == "alpha":
        order = _lex(-alpha_score(knob.value, p, cost), cost)
    else:  # pragma: no cover - Knob validates kind
        raise ValueError(knob.kind)
    return cap_first(order, cost, cap)


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


def explain(knob: Knob, model: str, p: float, cost: float, cap: float, n_affordable: int) -> str:
    """A one-line human explanation of a choice."""
    base = f"{model}: p_correct={p:.2f}, expected ${cost:.6f}"
    if knob.kind == "max_cost":
        why = f"most accurate of {n_affordable} candidate(s) within ${min(cap, knob.value):.6f}"
    elif knob.kind == "tradeoff":
        why = f"best p_correct - {knob.value:g} x cost"
    elif knob.kind == "min_accuracy":
        why = (
            f"cheapest predicted to reach {knob.value:.2f}"
            if p >= knob.value - 1e-12
            else f"none predicted to reach {knob.value:.2f}: most accurate"
        )
    else:
        why = f"best SCOPE score at alpha={knob.value:g}"
    if np.isfinite(cap) and knob.kind != "max_cost":
        why += f" (within ${cap:.6f} left)"
    return f"{base} ({why})"
