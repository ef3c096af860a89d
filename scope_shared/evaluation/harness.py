"""One evaluation run: split a routing table, hide what routers may not see, run every router, and
measure its curve and predictions against the test truth with the same cost accounting for all.

Costs: the test part's per-call USD (`RoutingTable.call_costs`: real where the data has it, else
prices x tokens) plus each router's own cost per query: CPU seconds (process CPU time, not wall time, so that a
busy machine does not inflate it) (query embedding, measured once
per data set, and the router's prediction time, measured per run) priced at ``cpu_usd_per_hour``,
plus any USD an estimator states it spends per query.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scope_shared.data import RoutingTable, stratified_split
from scope_shared.errors import EvaluationError
from scope_shared.evaluation.curves import Reference, reference, step_area, summarize
from scope_shared.evaluation.points import Point, curve
from scope_shared.evaluation.prediction import per_model_quality
from scope_shared.metrics import auroc, brier, ece, length_errors, median_abs_rel_error
from scope_shared.evaluation.routers import EvalRouter, EvalSplit, lambda_grid

#: price of CPU time for a router's own work (roughly an on-demand cloud vCPU-hour), stated in outputs
CPU_USD_PER_HOUR = 0.10


@dataclass
class Truth:
    """The test part's outcomes, per-call USD costs and (where known) output tokens."""

    scores: np.ndarray
    costs: np.ndarray
    tokens: np.ndarray | None = None


def make_split(
    table: RoutingTable,
    embeddings: np.ndarray,
    seed: int,
    test_size: float = 0.2,
    unseen: Sequence[str] = (),
    n_anchors: int | None = None,
    embedder_name: str = "embedder",
) -> tuple[EvalSplit, Truth]:
    """Split unique questions (stratified, seeded) into history and test parts.

    Models in ``unseen`` keep only ``n_anchors`` outcomes in the history part, on the same random
    history questions for all of them (the "onboarding" anchors); the rest are hidden from routers.
    Other settings (anchors the library suggests, benchmarks held out) are in
    `scope_shared.evaluation.settings`.
    """
    if unseen and not n_anchors:
        raise EvaluationError("held-out models need n_anchors > 0")
    tr, te = stratified_split(table.benchmarks, test_size, seed)
    anchors = None
    if unseen:
        anchors = np.random.default_rng([seed, 11]).choice(len(tr), size=min(n_anchors, len(tr)), replace=False)
    return build_split(table, embeddings, tr, te, seed, unseen, anchors, embedder_name)


def build_split(
    table: RoutingTable,
    embeddings: np.ndarray,
    hist_idx: np.ndarray,
    test_idx: np.ndarray,
    seed: int,
    unseen: Sequence[str] = (),
    anchors: np.ndarray | None = None,
    embedder_name: str = "embedder",
) -> tuple[EvalSplit, Truth]:
    """The split with table rows ``hist_idx`` as history and ``test_idx`` as test part.

    Models in ``unseen`` keep their outcomes only on ``anchors`` (positions in the history part, the
    same for all of them); their other history outcomes and lengths are hidden from routers.
    """
    if embeddings.shape[0] != len(table):
        raise EvaluationError("one embedding per table question is needed")
    unknown = [m for m in unseen if m not in table.models]
    if unknown:
        raise EvaluationError(f"held-out model(s) not in {table.name}: {', '.join(unknown)}")
    if unseen and (anchors is None or len(anchors) == 0):
        raise EvaluationError("held-out models need anchor questions")
    hist, test = table.subset(hist_idx), table.subset(test_idx)
    scores = hist.scores.copy()
    if unseen:
        hide = np.ones(len(hist), bool)
        hide[np.asarray(anchors, dtype=np.int64)] = False
        for m in unseen:
            scores[hide, table.models.index(m)] = np.nan
    hist_costs = hist.call_costs()
    known = np.isfinite(scores)
    mean_costs = np.array([hist_costs[known[:, j], j].mean() for j in range(len(table.models))])
    split = EvalSplit(
        dataset=table.name,
        seed=seed,
        models=list(table.models),
        cards=dict(table.cards),
        hist_questions=hist.questions,
        hist_benchmarks=hist.benchmarks,
        hist_emb=embeddings[hist_idx],
        hist_scores=scores,
        hist_tokens=None if hist.output_tokens is None else np.where(known, hist.output_tokens, np.nan),
        test_questions=test.questions,
        test_emb=embeddings[test_idx],
        embedder_name=embedder_name,
        unseen=list(unseen),
        lambdas=lambda_grid(mean_costs) if np.median(mean_costs) > 0 else np.array([0.0]),  # price-less tables
    )
    return split, Truth(test.scores, test.call_costs(), test.output_tokens)


@dataclass
class RouterResult:
    """A router's measured curve and figures on one split."""

    name: str
    kind: str
    points: list[Point]
    figures: dict[str, float | None]
    overhead_usd: float
    fit_s: float
    predict_s: float
    chosen: dict[str, float] = field(default_factory=dict)
    #: per model of the prediction figures: ``bias`` (mean p_correct - accuracy) and ``auroc``
    per_model: dict[str, dict[str, float | None]] = field(default_factory=dict)


def evaluate(
    router: EvalRouter,
    split: EvalSplit,
    truth: Truth,
    ref: Reference | None = None,
    embed_s_per_query: float = 0.0,
    cpu_usd_per_hour: float = CPU_USD_PER_HOUR,
    models: Sequence[str] | None = None,
) -> RouterResult:
    """Fit, route and measure one router. ``models``: the columns its prediction figures cover
    (default all; the unseen settings report them on the held-out models, also one by one in
    ``per_model``, with their means as ``bias_mean``, ``abs_bias_mean`` and ``auroc_per_model``)."""
    ref = ref or reference(split.models, truth.scores, truth.costs)
    t0 = time.perf_counter()
    router.fit(split)
    t1, c1 = time.perf_counter(), time.process_time()
    out = router.route(split)
    t2, c2 = time.perf_counter(), time.process_time()
    n = len(split.test_questions)
    cpu_s = (c2 - c1) / n + (embed_s_per_query if router.uses_embeddings else 0.0)
    overhead = cpu_s * cpu_usd_per_hour / 3600.0 + out.overhead_usd
    points = curve(truth.scores, truth.costs, out.choices, overhead)
    figures = summarize(points, ref)
    # the same decisions without the measured CPU time in their cost: unmoved by the machine's load
    # (comparisons of embedders, whose CPU costs differ 100-fold, read both)
    figures["auc_without_cpu"] = step_area(curve(truth.scores, truth.costs, out.choices, out.overhead_usd), *ref.cost_range)
    cols = [split.models.index(m) for m in (models or split.models)]
    p = None if out.p_correct is None else out.p_correct[:, cols]
    y = truth.scores[:, cols]
    figures.update(
        auroc=None if p is None else auroc(p, y),
        brier=None if p is None else brier(p, y),
        ece=None if p is None else ece(p, y),
    )
    per_model = {} if p is None else per_model_quality(p, y, [split.models[c] for c in cols])
    if per_model:
        biases = [q["bias"] for q in per_model.values() if q["bias"] is not None]
        aurocs = [q["auroc"] for q in per_model.values() if q["auroc"] is not None]
        figures.update(
            bias_mean=float(np.mean(biases)) if biases else None,
            abs_bias_mean=float(np.mean(np.abs(biases))) if biases else None,
            auroc_per_model=float(np.mean(aurocs)) if aurocs else None,
        )
    if out.default_choice is not None:
        rows = np.arange(len(out.default_choice))
        acc = float(np.mean(truth.scores[rows, out.default_choice]))
        cost = float(np.mean(truth.costs[rows, out.default_choice])) + overhead
        figures.update(default_accuracy=acc, default_cost=cost, default_gap_to_bsm=acc - ref.bsm.accuracy,
                       default_cost_share=cost / ref.bsm.cost if ref.bsm.cost > 0 else None)
    if out.output_tokens is not None and truth.tokens is not None:
        le = length_errors(out.output_tokens[:, cols], truth.tokens[:, cols])
        figures.update(length_mare=le["median_abs_rel_error"], length_within_band=le["within_band"])
    if out.expected_cost is not None:
        figures["cost_mare"] = median_abs_rel_error(out.expected_cost[:, cols], truth.costs[:, cols])
    return RouterResult(
        router.name,
        router.kind,
        points,
        figures,
        overhead,
        t1 - t0,
        t2 - t1,
        dict(getattr(router, "chosen", {}) or {}),
        per_model,
    )
