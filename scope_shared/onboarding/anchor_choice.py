"""Onboarding a new model: which history questions should it answer first?

A new model joins the router from its outcomes on some history questions (`Router.add_model`; no
retraining of any estimator). With few outcomes (20-250), *which* questions matters twice: they
become its anchors (what it is good at, near each query) and their mean becomes its level (the
estimators shrink toward it, the policies compare it with ``min_accuracy``). A set that over-samples
hard questions, or flattens the benchmarks' mix, under-rates every new model.

`suggest_questions` therefore draws a sample that is a miniature of the history:

- the pool (questions with outcomes of the known models) is sorted by benchmark, then difficulty
  (the known models' mean score, in tenths), then *which* known models solve the question
  (strong-but-not-weak first: the questions that separate them), then position in embedding space;
- the sorted pool is cut into ``n`` consecutive segments of equal size (give or take one) and one
  question is drawn at random (seeded) from each, mirrored in every second segment so that a pair
  of picks sits about its middle: every question's chance of being picked is
  ``1 / its segment's size``, about ``n / pool size`` for all, so the plain mean of the new model's
  outcomes estimates its accuracy on the history without bias (`Suggestion.weight` makes it exact),
  overall and per benchmark; and each benchmark is taken in its share of the history, every
  difficulty level in its share of the benchmark and every pattern of who-solves-it in its share,
  so the new model is placed among the known ones on the questions that separate them;
- suggestions come in a bit-reversed order, so any first part of the list is itself spread over
  the whole order (a user who answers only the first 20 of 50 still has a balanced set).

The previous rule (equal numbers per benchmark and per difficulty tercile) flattened accuracy and
over-sampled hard questions: new models came out about 6 points too low (issue 11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import math

import numpy as np

from scope_shared.errors import OnboardingError
from scope_shared.history import History

#: difficulty is binned in steps of this size before the finer sort keys break ties
DIFFICULTY_STEP = 0.1


@dataclass(frozen=True)
class Suggestion:
    """One question a new model should answer.

    ``difficulty`` is the known models' mean score on it; ``inclusion_probability`` its chance of
    being picked (about the same for every pool question), ``weight`` the inverse, for weighted estimates
    (`scope_shared.onboarding.report.estimated_accuracy`).
    """

    question_id: int
    text: str
    benchmark: str | None
    difficulty: float
    inclusion_probability: float = 1.0

    @property
    def weight(self) -> float:
        return 1.0 / self.inclusion_probability


def question_difficulty(history: History, models: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per history question: (mean score of the known models, number of models with an outcome)."""
    mean, count, _ = known_scores(history, models)
    return mean, count


def known_scores(history: History, models: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per history question: mean known score, count of known models, and the (n_questions,
    n_models) score matrix (NaN where a model has no outcome)."""
    models = list(models or history.models)
    scores = history.score_matrix(models).astype(np.float64)
    count = np.isfinite(scores).sum(1)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.nansum(scores, 1) / np.maximum(count, 1), np.nan)
    return mean, count, scores


def separation_key(scores: np.ndarray) -> np.ndarray:
    """Per question: how much the models that solve it are the strong ones, sum_j (y_ij - acc_j)
    (acc_j - mean acc); high where strong models succeed and weak ones fail."""
    known = np.isfinite(scores)
    acc = np.where(known, scores, 0.0).sum(0) / np.maximum(known.sum(0), 1)
    centred = np.where(known, scores - acc[None, :], 0.0)
    return centred @ (acc - acc.mean())


def leading_direction(x: np.ndarray, seed: int, iters: int = 20) -> np.ndarray:
    """Projection of the rows of ``x`` on their first principal direction (power iteration)."""
    if len(x) < 2:
        return np.zeros(len(x))
    c = x - x.mean(0, keepdims=True)
    v = np.random.default_rng([seed, 17]).standard_normal(x.shape[1])
    for _ in range(iters):
        v = c.T @ (c @ v)
        norm = np.linalg.norm(v)
        if norm == 0:
            return np.zeros(len(x))
        v /= norm
    return c @ v


def bit_reversed(n: int) -> np.ndarray:
    """A permutation of range(n) whose every prefix is spread over the whole range (van der Corput)."""
    if n <= 1:
        return np.arange(n)
    bits = int(np.ceil(np.log2(n)))
    keys = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)]
    return np.argsort(keys, kind="stable")


def sample_anchors(
    scores: np.ndarray,
    benchmarks: Sequence[str | None],
    n: int,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The sampling itself, on arrays (see the module doc).

    Args:
        scores: (n_questions, n_known_models) outcomes, NaN where unknown; questions without any
            outcome are not in the pool.
        benchmarks: per question, its benchmark (None allowed).
        n: how many to pick (at most the pool size).
        embeddings: (n_questions, dim) unit vectors, the last sort key (optional).
        seed: of the draw within each segment (and of the embedding direction's power iteration).

    Returns:
        (question indices in suggestion order, each one's inclusion probability).
    """
    if n <= 0:
        raise OnboardingError(f"n must be positive, got {n}")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or len(benchmarks) != len(scores):
        raise OnboardingError("sample_anchors needs a (questions, models) score matrix and one benchmark per question")
    count = np.isfinite(scores).sum(1)
    pool = np.flatnonzero(count > 0)
    if len(pool) == 0:
        raise OnboardingError("the history has no question with outcomes to suggest")
    n = min(n, len(pool))
    s = scores[pool]
    difficulty = np.nansum(s, 1) / count[pool]
    _, bench_code = np.unique(np.array([b or "" for b in np.asarray(benchmarks, dtype=object)[pool]]),
                              return_inverse=True)
    emb_key = np.zeros(len(pool)) if embeddings is None else leading_direction(np.asarray(embeddings)[pool], seed)
    level = np.floor(difficulty / DIFFICULTY_STEP + 1e-9)
    order = np.lexsort((emb_key, -separation_key(s), level, bench_code))
    bounds = (np.arange(n + 1) * len(pool)) // n  # n consecutive segments of the order, sizes differ by <= 1
    sizes = np.diff(bounds)
    # one draw serves a pair of neighbouring segments, mirrored in the second (balanced systematic
    # sampling): the pair's picks sit symmetrically about its middle, so a draw that happens to land
    # early in every segment does not tilt the sample toward one end of the difficulty order
    u = np.repeat(np.random.default_rng([seed, 19]).random((n + 1) // 2), 2)[:n]
    offset = np.floor(u * sizes).astype(np.int64)
    mirrored = np.arange(n) % 2 == 1
    pick = bounds[:-1] + np.where(mirrored, sizes - 1 - offset, offset)
    spread = bit_reversed(n)
    return pool[order[pick]][spread], 1.0 / sizes[spread]


def suggest_questions(
    history: History, n: int = 20, models: Sequence[str] | None = None, seed: int = 0
) -> list[Suggestion]:
    """Pick ``n`` history questions for a new model to answer (see the module doc); ``models``: the
    known models whose outcomes guide the choice (default all), ``seed``: the sample's random start."""
    if n <= 0:
        raise OnboardingError(f"n must be positive, got {n}")
    mean, _, scores = known_scores(history, models)
    picked, prob = sample_anchors(scores, history.benchmarks, n, np.asarray(history.embeddings), seed)
    return [
        Suggestion(int(i), history.text(int(i)), history.benchmark(int(i)), float(mean[i]), float(pi))
        for i, pi in zip(picked, prob)
    ]


class AnchorDifficultyWarning(UserWarning):
    """The anchors are much harder or easier than the pool they were drawn from (by the known
    models' mean score): the plain mean of a new model's outcomes on them is tilted."""


#: anchors differ "much" from the pool when their mean known score is this far from the pool's ...
DIFFICULTY_GAP = 0.05
#: ... and more than this many standard errors of a random draw of the same size
DIFFICULTY_GAP_SE = 3.0


def difficulty_gap(pool_difficulty: np.ndarray, anchor_difficulty: np.ndarray) -> str | None:
    """A warning text when the anchors' mean difficulty (known models' mean score) is much above or
    below the pool's (at least `DIFFICULTY_GAP` and `DIFFICULTY_GAP_SE` standard errors of a random
    draw of as many questions), else None."""
    pool = np.asarray(pool_difficulty, dtype=np.float64)
    pool = pool[np.isfinite(pool)]
    mine = np.asarray(anchor_difficulty, dtype=np.float64)
    mine = mine[np.isfinite(mine)]
    if len(pool) < 2 or not len(mine):
        return None
    gap = float(mine.mean() - pool.mean())
    se = float(pool.std(ddof=1)) / math.sqrt(len(mine)) * math.sqrt(max(1 - len(mine) / len(pool), 0.0))
    if abs(gap) < DIFFICULTY_GAP or abs(gap) < DIFFICULTY_GAP_SE * se:
        return None
    kind = "easier" if gap > 0 else "harder"
    return (f"the {len(mine)} anchors are much {kind} than the pool: the known models score {mine.mean():.1%} "
            f"on them, {pool.mean():.1%} on the pool ({abs(gap) / max(se, 1e-12):.1f} standard errors of a random draw); "
            "the plain mean of the new model's outcomes is tilted (its corrected level, levels.model_levels, is not)")
