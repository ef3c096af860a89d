"""What onboarding measured: accuracy with intervals (overall, per benchmark), tokens, latency, cost.

`accuracy_report` is pure (scores and group names in, rows out) so another estimate of the
interval can replace it in one place. Intervals are Wilson score intervals on the mean score
(exact for 0/1 scores; for partial credit it treats the mean as a proportion, a fair
approximation for scores in [0, 1]). With ``weights`` (inverse inclusion probabilities) means are
weighted and intervals use the Kish effective sample size ``(sum w)^2 / sum w^2``.

`estimated_accuracy` reads a model's outcomes on a history (by name, or given by question) and
estimates its accuracy *on that history*: outcomes weighted by the given inverse inclusion
probabilities (e.g. `Suggestion.weight`), or else post-stratified to the history's benchmark mix
(each outcome weighs its benchmark's size over the outcomes there: the same thing for a
`suggest_questions` sample, and a correction for any other set). Overall covers only benchmarks
with outcomes; ``coverage`` says which share of the history that is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scope_shared.errors import OnboardingError
from scope_shared.estimators.levels import LevelEstimate
from scope_shared.history import History

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class AccuracyRow:
    """Mean score of ``n`` answers with a confidence interval [low, high]."""

    name: str
    n: int
    accuracy: float
    low: float
    high: float


def wilson_interval(mean: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``mean`` observed on ``n`` (effective) trials."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (mean + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(mean * (1 - mean), 0.0) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_report(
    scores: Sequence[float], groups: Sequence[str], z: float = Z_95, weights: Sequence[float] | None = None
) -> tuple[AccuracyRow, list[AccuracyRow]]:
    """(overall row, one row per group, largest group first) for scores in [0, 1]; ``weights``:
    optional inverse inclusion probabilities, one per score (see the module doc)."""
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(groups, dtype=object)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != s.shape or not np.all(np.isfinite(w)) or (len(w) and w.min() <= 0):
        raise OnboardingError("weights must be positive numbers, one per score")

    def row(name: str, vals: np.ndarray, wts: np.ndarray) -> AccuracyRow:
        if not len(vals):
            return AccuracyRow(name, 0, float("nan"), 0.0, 1.0)
        mean = float(np.sum(wts * vals) / np.sum(wts))
        low, high = wilson_interval(mean, float(np.sum(wts) ** 2 / np.sum(wts * wts)), z)
        return AccuracyRow(name, int(len(vals)), mean, low, high)

    names = sorted(set(g.tolist()), key=lambda b: (-int((g == b).sum()), b))
    return row("overall", s, w), [row(b, s[g == b], w[g == b]) for b in names]


@dataclass(frozen=True)
class AccuracyReport:
    """A model's estimated accuracy on a history, overall and per benchmark (`estimated_accuracy`)."""

    model: str
    overall: AccuracyRow
    per_benchmark: list[AccuracyRow]
    #: share of the history's questions in benchmarks with at least one outcome (what overall covers)
    coverage: float

    def lines(self) -> list[str]:
        """Human-readable lines, overall first."""
        o = self.overall
        head = f"{self.model}: estimated accuracy {o.accuracy:.1%} (95% CI {o.low:.1%} - {o.high:.1%}, n={o.n})"
        if self.coverage < 1:
            head += f" over {self.coverage:.0%} of the history"
        return [head] + [f"  {r.name}: {r.accuracy:.1%} ({r.low:.0%} - {r.high:.0%}, n={r.n})" for r in self.per_benchmark]


NO_BENCHMARK = "(none)"


def _question_ids(history: History, keys: list[int | str]) -> np.ndarray:
    ids = []
    for k in keys:
        qid = history.question_id(k) if isinstance(k, str) else int(k)
        if qid is None or not 0 <= qid < len(history):
            raise OnboardingError(f"question {str(k)[:60]!r} is not in the history")
        ids.append(qid)
    return np.array(ids, dtype=np.int64)


def _numbers(values: Any, what: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise OnboardingError(f"{what} must be numbers") from None


def estimated_accuracy(
    history: History,
    model: str | Mapping[int | str, float],
    weights: Mapping[int | str, float] | None = None,
    name: str | None = None,
    z: float = Z_95,
) -> AccuracyReport:
    """A model's estimated accuracy on ``history``, overall and per benchmark (see the module doc).

    Args:
        history: the history the model was onboarded on.
        model: a model name (its outcomes are read from the history), or its outcomes as a mapping
            from question id or question text to score in [0, 1].
        weights: optional inverse inclusion probabilities, keyed like the outcomes; default:
            post-stratification to the history's benchmark mix.
        name: the model's name in the report when outcomes are given (default ``"new model"``).
        z: the normal quantile of the intervals (default 95%).
    """
    if isinstance(model, str):
        arr = history.model_arrays(model)  # UnknownModelError names a model without outcomes
        ids, y, label = np.asarray(arr.ids, dtype=np.int64), np.asarray(arr.scores, dtype=np.float64), model
    else:
        if not model:
            raise OnboardingError("no outcomes to report on")
        outcomes = dict(zip(_question_ids(history, list(model)).tolist(), model.values()))  # one per question
        ids, label = np.array(list(outcomes), dtype=np.int64), name or "new model"
        y = _numbers(outcomes.values(), "outcome scores")
    if not np.all(np.isfinite(y)) or y.min() < 0 or y.max() > 1:
        raise OnboardingError("outcome scores must be in [0, 1]")
    all_bench = np.array([b or NO_BENCHMARK for b in history.benchmarks], dtype=object)
    bench = all_bench[ids]
    names, sizes = np.unique(all_bench, return_counts=True)
    size = dict(zip(names.tolist(), sizes.tolist()))
    if weights is not None:
        wid = dict(zip(_question_ids(history, list(weights)).tolist(), weights.values()))
        missing = [i for i in ids.tolist() if i not in wid]
        if missing:
            raise OnboardingError(f"no weight for question id {missing[0]} (give one per outcome)")
        w = _numbers([wid[i] for i in ids.tolist()], "weights")
    else:
        per = {b: int((bench == b).sum()) for b in set(bench.tolist())}
        w = np.array([size[b] / per[b] for b in bench.tolist()])
    overall, per_benchmark = accuracy_report(y, bench.tolist(), z, w)
    coverage = sum(size[r.name] for r in per_benchmark) / len(history)
    return AccuracyReport(label, overall, per_benchmark, coverage)


@dataclass
class OnboardingReport:
    """Everything `onboard` measured for one model (``text()`` is what it prints)."""

    model: str
    input_price: float
    output_price: float
    anchors_planned: int
    graded: int
    calls_made: int
    reused_from_log: int
    overall: AccuracyRow
    per_benchmark: list[AccuracyRow]
    median_output_tokens: float
    median_latency_s: float
    cost_per_call: float
    assumed_cost_per_call: float
    assumed_output_tokens: float
    spent_this_run: float
    spent_total: float
    max_spend: float | None
    failed: list[str] = field(default_factory=list)
    skipped_by_cap: int = 0
    left_out_metrics: list[str] = field(default_factory=list)
    tokens_counted_locally: int = 0
    judge_tokens: tuple[float, float] | None = None
    #: the model's level on the history, corrected for the anchors' difficulty (`levels.model_levels`)
    level: LevelEstimate | None = None
    #: set when the anchors are much harder or easier than the pool (`AnchorDifficultyWarning`)
    difficulty_warning: str | None = None
    #: wall-clock seconds of the whole `onboard` call
    run_time_s: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """The report as printed at the end of onboarding."""
        o = self.overall
        lines = [
            f"Onboarding report: {self.model}  (card: ${self.input_price:g} in / ${self.output_price:g} out per 1M tokens)",
            f"  anchors graded   {self.graded} of {self.anchors_planned} planned ({self.calls_made} called now, {self.reused_from_log} from the log)",
        ]
        if self.graded:
            lines.append(f"  accuracy         {o.accuracy:.1%}  (95% CI {o.low:.1%} - {o.high:.1%}, n={o.n})")
            for r in self.per_benchmark:
                lines.append(f"    {r.name:<22} {r.accuracy:6.1%}  ({r.low:.0%} - {r.high:.0%}, n={r.n})")
            if self.level is not None and self.level.method == "irt":
                lv = self.level
                lines.append(f"  level            {lv.level:.1%}  (95% CI {lv.low:.1%} - {lv.high:.1%}) on the whole history, "
                             "corrected for the anchors' difficulty")
            lines += [
                f"  output tokens    median {self.median_output_tokens:.0f}",
                f"  latency          median {self.median_latency_s:.2f} s",
                f"  cost per call    ${self.cost_per_call:.6f} measured (real usage x card price)"
                f" vs ${self.assumed_cost_per_call:.6f} assumed before (counted input + {self.assumed_output_tokens:.0f} output tokens)",
            ]
        cap = "no cap" if self.max_spend is None else f"cap ${self.max_spend:.4f}"
        lines.append(f"  spent            ${self.spent_this_run:.6f} this run, ${self.spent_total:.6f} in all ({cap})")
        if self.tokens_counted_locally:
            lines.append(f"  note: {self.tokens_counted_locally} replies reported no usage; their tokens were counted locally")
        if self.judge_tokens:
            lines.append(f"  judge tokens     {self.judge_tokens[0]:.0f} in / {self.judge_tokens[1]:.0f} out")
        if self.skipped_by_cap:
            lines.append(f"  stopped at the spend cap: {self.skipped_by_cap} anchors not asked (raise --max-spend and rerun to finish)")
        for metric in self.left_out_metrics:
            why = "code grading is off; pass run_code=True / --run-code" if metric == "code" else "no grader for it"
            lines.append(f"  {metric} questions were left out of the anchors: {why}")
        if self.failed:
            lines.append(f"  {len(self.failed)} failed (not recorded; a rerun retries them): {self.failed[0]}")
        if self.difficulty_warning:
            lines.append(f"  warning: {self.difficulty_warning}")
        if self.run_time_s == self.run_time_s:
            lines.append(f"  run time         {self.run_time_s:.1f} s")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()
