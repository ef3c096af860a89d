"""Evaluation hook: run any estimator (built for the reasoning one) on a capped set of questions.

Reports what the routing-quality benchmark needs about a *predictor*: how well ``p_correct`` ranks
right above wrong answers (AUROC), how far the predicted output lengths are from the real ones,
and how long the predictor takes per routing decision (one query, all candidates, anchor retrieval
included), since a reasoning predictor is slow on a CPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from scope_shared.embedders import Embedder
from scope_shared.progress import show_bars
from scope_shared.errors import EvaluationError
from scope_shared.estimators import Estimator
from scope_shared.history import History
from scope_shared.metrics import auroc


def evaluate_estimator(
    estimator: Estimator,
    history: History,
    embedder: Embedder,
    questions: Sequence[str],
    models: Sequence[str],
    true_scores: np.ndarray,
    true_tokens: np.ndarray | None = None,
    max_questions: int | None = 20,
    seed: int = 0,
    query_embs: np.ndarray | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Predict question by question (each one a routing decision) and score the predictions.

    ``true_scores`` / ``true_tokens`` are (n_questions, n_models), NaN where unknown. At most
    ``max_questions`` questions are used (a seeded random sample). Returns AUROC of ``p_correct``
    against ``score >= 0.5``, mean absolute length error (tokens) and median absolute log2 length
    ratio, latency per decision (median, p90, mean, seconds), and how many pairs fell back.
    """
    true_scores = np.asarray(true_scores, dtype=np.float64)
    n = len(questions)
    if true_scores.shape != (n, len(models)):
        raise EvaluationError(f"true_scores has shape {true_scores.shape}, expected ({n}, {len(models)})")
    idx = np.arange(n)
    if max_questions is not None and n > max_questions:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_questions, replace=False))
    embs = embedder.embed([questions[i] for i in idx]) if query_embs is None else np.asarray(query_embs)[idx]
    p = np.full((len(idx), len(models)), np.nan)
    tok = np.full_like(p, np.nan)
    latency, fallbacks = [], 0
    for r, i in enumerate(tqdm(idx, desc=f"evaluating {estimator.name}", disable=not show_bars(show_progress))):
        t0 = time.perf_counter()
        raw = estimator.predict_for([questions[i]], embs[r : r + 1], list(models), history)
        latency.append(time.perf_counter() - t0)
        p[r], tok[r] = raw.p_correct[0], raw.output_tokens[0]
        if raw.rationales:
            fallbacks += sum("estimate used" in (x or "") for x in raw.rationales[0])
    truth = true_scores[idx]
    known = np.isfinite(truth)
    out: dict[str, Any] = {
        "estimator": estimator.name,
        "n_questions": int(len(idx)),
        "n_pairs": int(known.sum()),
        "auroc": _nan_if_none(auroc(p[known], truth[known])),
        "fallback_pairs": int(fallbacks),
        "latency_s_median": float(np.median(latency)) if latency else float("nan"),
        "latency_s_p90": float(np.percentile(latency, 90)) if latency else float("nan"),
        "latency_s_mean": float(np.mean(latency)) if latency else float("nan"),
    }
    if true_tokens is not None:
        tt = np.asarray(true_tokens, dtype=np.float64)[idx]
        ok = np.isfinite(tt) & np.isfinite(tok)
        out["length_mae"] = float(np.abs(tok[ok] - tt[ok]).mean()) if ok.any() else float("nan")
        out["length_median_abs_log2_ratio"] = (
            float(np.median(np.abs(np.log2((tok[ok] + 1) / (tt[ok] + 1))))) if ok.any() else float("nan")
        )
    return out


def evaluate_on_table(
    estimator: Estimator,
    history: History,
    embedder: Embedder,
    table: Any,
    max_questions: int | None = 20,
    seed: int = 0,
    query_embs: np.ndarray | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """`evaluate_estimator` on a held-out `RoutingTable` (questions x models, scores, tokens)."""
    models = [m for m in table.models if m in history.models]
    cols = [table.models.index(m) for m in models]
    tokens = None if table.output_tokens is None else table.output_tokens[:, cols]
    return evaluate_estimator(
        estimator, history, embedder, table.questions, models, table.scores[:, cols], tokens,
        max_questions, seed, query_embs, show_progress,
    )


def _nan_if_none(x: float | None) -> float:
    return float("nan") if x is None else x
