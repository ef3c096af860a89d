"""Output lengths where the history has none, and saying so.

An estimator predicts a model's output tokens from its anchors' token counts. Where those are unknown
(the bundled pack's data has none), the length comes, in this order, from:

1. ``prior``: the card's per-benchmark output-length priors (``ModelCard.output_tokens_by_benchmark``,
   e.g. measured on real provider usage of other models on similar benchmarks), averaged in log space
   over the benchmarks of the query's anchors, weighted by similarity;
2. ``assumed``: one number for every question: the card's ``default_output_tokens``, else the
   router's default (256).

Each estimate carries where its length came from (``output_tokens_source``), and a decision whose
chosen model's length or input count was assumed says so in its explanation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.history import Anchors, History

HISTORY, PRIOR, ASSUMED = "history", "prior", "assumed"


def fill_output_tokens(
    predicted: np.ndarray, anchors: Anchors, history: History, cards: Sequence[ModelCard], default: float
) -> tuple[np.ndarray, np.ndarray]:
    """``predicted`` (n_queries, n_models; NaN = unknown) with the unknowns filled; returns the tokens
    and, per cell, where they came from (`HISTORY`, `PRIOR` or `ASSUMED`)."""
    tokens = np.array(predicted, dtype=np.float64, copy=True)
    source = np.full(tokens.shape, HISTORY, dtype=object)
    unknown = ~np.isfinite(tokens)
    if not unknown.any():
        return tokens, source
    benchmark_of = history.benchmarks
    for j, card in enumerate(cards):
        rows = np.flatnonzero(unknown[:, j])
        if not len(rows):
            continue
        fallback = card.default_output_tokens or default
        priors = card.output_tokens_by_benchmark or {}
        for i in rows:
            value = _prior_near(anchors, i, j, benchmark_of, priors) if priors else None
            tokens[i, j], source[i, j] = (value, PRIOR) if value is not None else (fallback, ASSUMED)
    return tokens, source


def _prior_near(anchors: Anchors, i: int, j: int, benchmark_of: list[str | None],
                priors: dict[str, float]) -> float | None:
    """Similarity-weighted geometric mean of the priors of query ``i``'s anchors' benchmarks for model ``j``."""
    logs, weights = [], []
    for qid, sim, used in zip(anchors.ids[i, j], anchors.sims[i, j], anchors.mask[i, j]):
        if not used or qid < 0:
            continue
        prior = priors.get(benchmark_of[int(qid)] or "")
        if prior:
            logs.append(np.log(prior))
            weights.append(max(float(sim), 1e-6))
    if not logs:
        return None
    return float(np.exp(np.average(logs, weights=weights)))


def assumption_note(output_tokens: float, output_source: str, input_approximated: bool) -> str:
    """What an estimate assumed, in words (``""`` when nothing was)."""
    parts = []
    if output_source == ASSUMED:
        parts.append(f"{output_tokens:.0f} output tokens assumed (no token counts for this model near this question)")
    elif output_source == PRIOR:
        parts.append(f"{output_tokens:.0f} output tokens from the benchmark length prior (no counts for this model)")
    if input_approximated:
        parts.append("input tokens approximated as characters / 4")
    return "; ".join(parts)
