"""What onboarding measured: accuracy with intervals (overall, per benchmark), tokens, latency, cost.

`accuracy_report` is pure (scores and group names in, rows out) so another estimate of the
interval can replace it in one place. Intervals are Wilson score intervals on the mean score
(exact for 0/1 scores; for partial credit it treats the mean as a proportion, a fair
approximation for scores in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class AccuracyRow:
    """Mean score of ``n`` answers with a confidence interval [low, high]."""

    name: str
    n: int
    accuracy: float
    low: float
    high: float


def wilson_interval(mean: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``mean`` observed on ``n`` trials."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (mean + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(mean * (1 - mean), 0.0) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_report(scores: Sequence[float], groups: Sequence[str], z: float = Z_95) -> tuple[AccuracyRow, list[AccuracyRow]]:
    """(overall row, one row per group, largest group first) for scores in [0, 1]."""
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(groups, dtype=object)

    def row(name: str, vals: np.ndarray) -> AccuracyRow:
        mean = float(vals.mean()) if len(vals) else float("nan")
        low, high = wilson_interval(mean if len(vals) else 0.0, len(vals), z)
        return AccuracyRow(name, int(len(vals)), mean, low, high)

    names = sorted(set(g.tolist()), key=lambda b: (-int((g == b).sum()), b))
    return row("overall", s), [row(b, s[g == b]) for b in names]


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
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()
