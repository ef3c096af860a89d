"""SCOPE routers under evaluation: adapters over `scope_shared.Router` with any `Estimator`.

A registry maps a name to a factory ``(history, split) -> Estimator``; a new estimator joins the
benchmark with one line::

    register_estimator("scope-mine", lambda history, split: MyEstimator())

The adapter records the history part (with only the anchors of unseen models) into a `History`,
builds a `Router` over it with the estimator, reads every test question's estimates through the
public `Router.estimate_batch`, and sweeps the same tradeoff grid as every other router (what
`Router.route(knob={"tradeoff": lam})` decides, vectorised). Its one out-of-the-box operating point is what
`Router.decide` (as `Router.route_batch`) picks under the router's default knob (``default_*`` figures);
``scope-default`` is the router with every default (estimator included), nothing tuned. An estimator that spends money per query (an LLM)
states it as ``overhead_usd_per_query``; CPU time is measured by the benchmark.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.data import RoutingTable
from scope_shared.embedders import FunctionEmbedder
from scope_shared.errors import EvaluationError
from scope_shared.estimators import Estimator, KNNEstimator, PanelEstimator
from scope_shared.evaluation.routers import EvalRouter, EvalSplit, RouterOutput, sweep
from scope_shared.history import History
from scope_shared.routing.router import Router

#: builds the estimator from the history part; ``None`` means the `Router`'s own default
EstimatorFactory = Callable[[History, EvalSplit], Estimator | None]
#: where `register_reasoning_estimator` finds the reasoning predictor's model when none is given
REASONER_DIR_ENV = "SCOPE_REASONER_DIR"

SCOPE_ESTIMATORS: dict[str, EstimatorFactory] = {}


def register_estimator(name: str, factory: EstimatorFactory) -> None:
    """Add (or replace) a SCOPE estimator to the benchmark under ``name``."""
    if not name or not callable(factory):
        raise EvaluationError("register_estimator needs a name and a factory (history, split) -> Estimator")
    SCOPE_ESTIMATORS[name] = factory


register_estimator("scope-default", lambda history, split: None)  # the library's defaults, nothing tuned
register_estimator("scope-knn", lambda history, split: KNNEstimator())
register_estimator("scope-panel", lambda history, split: PanelEstimator(seed=split.seed))


def lookup_embedder(split: EvalSplit) -> FunctionEmbedder:
    """An embedder that returns the split's precomputed vectors (embedding happened once, cached)."""
    table = dict(zip(split.hist_questions, split.hist_emb))
    table.update(zip(split.test_questions, split.test_emb))
    dim = split.hist_emb.shape[1]

    def fn(texts: list[str]) -> np.ndarray:
        try:
            return np.stack([table[t] for t in texts])
        except KeyError as exc:
            raise EvaluationError(f"text without a precomputed embedding: {str(exc)[:60]}") from None

    return FunctionEmbedder(fn, dim, name=split.embedder_name)


def history_of(split: EvalSplit, embedder: FunctionEmbedder) -> History:
    """The history part as a `History` (hidden outcomes left out), via `RoutingTable.to_history`."""
    table = RoutingTable(
        name=split.dataset,
        questions=list(split.hist_questions),
        benchmarks=list(split.hist_benchmarks),
        models=list(split.models),
        scores=split.hist_scores,
        cards=dict(split.cards),
        output_tokens=None if split.hist_tokens is None else np.where(split.known, split.hist_tokens, np.nan),
    )
    return table.to_history(embedder, show_progress=False, embeddings=split.hist_emb)


class ScopeRouter(EvalRouter):
    """A `scope_shared.Router` with the registered estimator ``name``."""

    kind = "scope"
    uses_embeddings = True

    def __init__(self, name: str, factory: EstimatorFactory | None = None) -> None:
        if factory is None and name not in SCOPE_ESTIMATORS:
            raise EvaluationError(f"no SCOPE estimator {name!r}; registered: {', '.join(SCOPE_ESTIMATORS)}")
        self.name = name
        self.factory = factory or SCOPE_ESTIMATORS[name]
        self.router: Router | None = None

    def fit(self, split: EvalSplit) -> None:
        embedder = lookup_embedder(split)
        history = history_of(split, embedder)
        estimator = self.factory(history, split)
        self.router = Router(split.cards.values(), history, estimator=estimator, embedder=embedder)

    def route(self, split: EvalSplit) -> RouterOutput:
        if self.router is None:
            raise EvaluationError("fit the router first")
        est = self.router.estimate_batch(split.test_questions, candidates=split.models)
        p = np.array([[e[m].p_correct for m in split.models] for e in est])
        cost = np.array([[e[m].expected_cost for m in split.models] for e in est])
        tok = np.array([[e[m].expected_output_tokens for m in split.models] for e in est])
        col = {m: j for j, m in enumerate(split.models)}
        self.last_estimates = (p, cost)  # for benchmarks that re-decide offline (e.g. other margins)
        # what route_batch decides with no knob set, on these estimates (embeddings cached by text)
        knobs = self.router.default_knobs(self.router.embed(split.test_questions))
        default = np.array([col[self.router.decide(e, k).model] for e, k in zip(est, knobs)])
        return RouterOutput(
            sweep(p, cost, split.lambdas),
            p_correct=p,
            output_tokens=tok,
            expected_cost=cost,
            overhead_usd=float(getattr(self.router.estimator, "overhead_usd_per_query", 0.0)),
            default_choice=default,
        )


def scope_routers(names: list[str] | None = None) -> list[ScopeRouter]:
    """Adapters for the named (default: all registered) SCOPE estimators."""
    return [ScopeRouter(n) for n in (names or list(SCOPE_ESTIMATORS))]


def _learned_estimator(history: History, split: EvalSplit) -> Estimator:
    """The learned estimator (issue 6), trained on the seen models of the history part, Platt-calibrated."""
    from scope_shared.estimators.learned import train_calibrated

    return train_calibrated(history, [m for m in history.models if m not in split.unseen], seed=split.seed)


register_estimator("scope-learned", _learned_estimator)


def register_reasoning_estimator(
    model_dir: str | Path | None = None, name: str = "scope-reasoning", **kwargs: Any
) -> bool:
    """Register under ``name`` if a model directory is given or in ``$SCOPE_REASONER_DIR``."""
    model_dir = model_dir or os.environ.get(REASONER_DIR_ENV)
    if not model_dir:
        return False
    from scope_shared.estimators.reasoning.registry import reasoning_factory

    register_estimator(name, reasoning_factory(model_dir, **kwargs))
    return True
