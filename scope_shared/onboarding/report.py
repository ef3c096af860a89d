"""What onboarding learned about a new model: its estimated accuracy with an interval, overall and
per benchmark, from its outcomes on history questions.

`accuracy_report` is a pure function of the history and the model's outcomes. Each outcome is
weighted by the inverse of its question's inclusion probability when those are given (e.g.
`Suggestion.weight`); otherwise the outcomes are post-stratified to the history's benchmark mix
(each weighs its benchmark's history size over the outcomes there), which is the same thing for a
`suggest_questions` sample and corrects the mix of any other set. Per benchmark the estimate is
the weighted mean of its outcomes; overall, the weighted mean of all. Intervals are Wilson score
intervals at the Kish effective sample size ``(sum w)^2 / sum w^2`` (for 0/1 scores; fractional
scores are treated as proportions, which errs wide). Overall covers only benchmarks with outcomes:
``coverage`` says which share of the history that is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from scope_shared.errors import ScopeError
from scope_shared.history import History

NO_BENCHMARK = "(none)"


@dataclass(frozen=True)
class AccuracyEstimate:
    """An estimated accuracy in [0, 1] with its interval and the outcomes it rests on."""

    accuracy: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.accuracy:.1%} [{self.low:.1%}, {self.high:.1%}] (n={self.n})"


@dataclass(frozen=True)
class AccuracyReport:
    """A new model's estimated accuracy on the history, overall and per benchmark."""

    model: str
    overall: AccuracyEstimate
    by_benchmark: dict[str, AccuracyEstimate]
    #: share of the history's questions in benchmarks with at least one outcome (what overall covers)
    coverage: float
    confidence: float = 0.95

    def lines(self) -> list[str]:
        """Human-readable lines, overall first."""
        out = [f"{self.model}: estimated accuracy {self.overall} at {self.confidence:.0%} confidence"
               + (f", over {self.coverage:.0%} of the history" if self.coverage < 1 else "")]
        out += [f"  {b}: {e}" for b, e in sorted(self.by_benchmark.items())]
        return out


def wilson(p: float, n_eff: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` seen over ``n_eff`` (effective) trials."""
    if n_eff <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    denom = 1 + z * z / n_eff
    centre = (p + z * z / (2 * n_eff)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n_eff + z * z / (4 * n_eff * n_eff)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def weighted_estimate(scores: np.ndarray, weights: np.ndarray, confidence: float = 0.95) -> AccuracyEstimate:
    """Weighted mean of ``scores`` with a Wilson interval at the Kish effective sample size."""
    w = np.asarray(weights, dtype=np.float64)
    y = np.asarray(scores, dtype=np.float64)
    p = float(np.sum(w * y) / np.sum(w))
    n_eff = float(np.sum(w) ** 2 / np.sum(w * w))
    low, high = wilson(p, n_eff, confidence)
    return AccuracyEstimate(p, low, high, len(y))


def _question_ids(history: History, keys: list[int | str]) -> np.ndarray:
    ids = []
    for k in keys:
        qid = history.question_id(k) if isinstance(k, str) else int(k)
        if qid is None or not 0 <= qid < len(history):
            raise ScopeError(f"question {str(k)[:60]!r} is not in the history")
        ids.append(qid)
    return np.array(ids, dtype=np.int64)


def _numbers(values, what: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ScopeError(f"{what} must be numbers") from None


def accuracy_report(
    history: History,
    model: str | Mapping[int | str, float],
    weights: Mapping[int | str, float] | None = None,
    confidence: float = 0.95,
    name: str | None = None,
) -> AccuracyReport:
    """The estimated accuracy of a model on the history, overall and per benchmark (module doc).

    Args:
        history: the history the model was onboarded on.
        model: a model name (its outcomes are read from the history), or its outcomes as a mapping
            from question id or question text to score in [0, 1].
        weights: optional inverse inclusion probabilities, keyed like the outcomes (ids or texts);
            default: post-stratification to the history's benchmark mix.
        confidence: of the intervals.
        name: the model's name in the report when outcomes are given (default ``"new model"``).
    """
    if not 0 < confidence < 1:
        raise ScopeError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(model, str):
        arr = history.model_arrays(model)  # UnknownModelError names a model without outcomes
        ids, y, label = np.asarray(arr.ids, dtype=np.int64), np.asarray(arr.scores, dtype=np.float64), model
    else:
        if not model:
            raise ScopeError("no outcomes to report on")
        outcomes = dict(zip(_question_ids(history, list(model)).tolist(), model.values()))  # one per question
        ids, label = np.array(list(outcomes), dtype=np.int64), name or "new model"
        y = _numbers(outcomes.values(), "outcome scores")
    if not np.all(np.isfinite(y)) or y.min() < 0 or y.max() > 1:
        raise ScopeError("outcome scores must be in [0, 1]")
    all_bench = np.array([b or NO_BENCHMARK for b in history.benchmarks], dtype=object)
    bench = all_bench[ids]
    names, sizes = np.unique(all_bench, return_counts=True)
    size = dict(zip(names.tolist(), sizes.tolist()))
    if weights is not None:
        wid = dict(zip(_question_ids(history, list(weights)).tolist(), weights.values()))
        missing = [i for i in ids.tolist() if i not in wid]
        if missing:
            raise ScopeError(f"no weight for question id {missing[0]} (give one per outcome)")
        w = _numbers([wid[i] for i in ids.tolist()], "weights")
        if not np.all(np.isfinite(w)) or w.min() <= 0:
            raise ScopeError("weights must be positive (inverse inclusion probabilities)")
    else:
        per = {b: int((bench == b).sum()) for b in set(bench.tolist())}
        w = np.array([size[b] / per[b] for b in bench.tolist()])
    by_benchmark = {
        b: weighted_estimate(y[bench == b], w[bench == b], confidence) for b in sorted(set(bench.tolist()))
    }
    coverage = sum(size[b] for b in by_benchmark) / len(history)
    return AccuracyReport(label, weighted_estimate(y, w, confidence), by_benchmark, coverage, confidence)
