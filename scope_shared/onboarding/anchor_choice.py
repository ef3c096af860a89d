"""Onboarding a new model: which history questions should it answer first?

A new model joins the router from its outcomes on some history questions (`Router.add_model`; no
retraining of any estimator). With few outcomes (20-50), *which* questions matters: they become its
anchors. `suggest_questions` picks a set that is diverse over benchmarks, over difficulty (how the
known models did) and over the embedding space, preferring questions the known models disagree on
(they separate strong from weak models).

Selection: questions are grouped into strata (benchmark x difficulty tercile); strata are visited
round-robin (each round visits every benchmark, at a difficulty that rotates), and within a stratum the question farthest
from those already chosen (cosine) is taken, ties going to higher disagreement. Deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scope_shared.errors import ScopeError
from scope_shared.history import History


@dataclass(frozen=True)
class Suggestion:
    """One question a new model should answer: id, text, benchmark and the known models' mean score."""

    question_id: int
    text: str
    benchmark: str | None
    difficulty: float


def question_difficulty(history: History, models: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per history question: (mean score of the known models, number of models with an outcome)."""
    n = len(history)
    total, count = np.zeros(n), np.zeros(n)
    for m in models or history.models:
        arr = history.model_arrays(m)
        total[arr.ids] += arr.scores
        count[arr.ids] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


def suggest_questions(history: History, n: int = 20, models: Sequence[str] | None = None) -> list[Suggestion]:
    """Pick ``n`` history questions for a new model to answer (see the module doc)."""
    if n <= 0:
        raise ScopeError(f"n must be positive, got {n}")
    mean, count = question_difficulty(history, models)
    pool = np.flatnonzero(count > 0)
    if len(pool) == 0:
        raise ScopeError("the history has no question with outcomes to suggest")
    n = min(n, len(pool))
    bench = np.array([history.benchmark(int(i)) or "(none)" for i in pool])
    diff = mean[pool]
    tercile = np.digitize(diff, np.quantile(diff, [1 / 3, 2 / 3])) if len(pool) >= 3 else np.zeros(len(pool), int)
    disagreement = np.where(count[pool] > 1, diff * (1 - diff), 0.0)
    emb = np.asarray(history.embeddings)[pool]
    names, sizes = np.unique(bench, return_counts=True)
    bench_order = names[np.argsort(-sizes, kind="stable")]
    # each round visits every benchmark once, benchmark i at difficulty tercile (i + r) mod 3 (or the
    # next one that has questions left), so even the first round mixes easy, medium and hard ones
    members = {(b, t): np.flatnonzero((bench == b) & (tercile == t)) for b in bench_order for t in range(3)}
    taken = np.zeros(len(pool), bool)
    closest = np.full(len(pool), -np.inf)  # max cosine to the chosen set
    chosen: list[int] = []
    r = 0
    while len(chosen) < n:
        progressed = False
        for i, b in enumerate(bench_order):
            if len(chosen) >= n:
                break
            for t in ((i + r) % 3, (i + r + 1) % 3, (i + r + 2) % 3):
                cand = members[(b, t)][~taken[members[(b, t)]]]
                if len(cand):
                    break
            if len(cand) == 0:
                continue
            score = -closest[cand] + 1e-3 * disagreement[cand]
            pick = int(cand[np.argmax(score)])
            taken[pick] = True
            chosen.append(pick)
            closest = np.maximum(closest, emb @ emb[pick])
            progressed = True
        r += 1
        if not progressed:
            break
    return [
        Suggestion(int(pool[i]), history.text(int(pool[i])), history.benchmark(int(pool[i])), float(diff[i]))
        for i in chosen
    ]
