"""Length (and cost-per-call) prediction on real usage, against a per-model-median baseline.

- On a table with real output tokens (routerarena-2), every registered SCOPE estimator predicts the
  test part's output tokens and cost per call from the history part.
- With ``unseen`` models (alpacaeval-lengths), those models keep only ``n_anchors`` history lengths:
  the question is whether anchors near the query predict a new model's length better than the
  median of its few anchors.
Tables without correctness (lengths only) get a placeholder score of 0.5 wherever a length is known,
so that outcomes can be recorded; no correctness figure is read from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from scope_shared.data import RoutingTable
from scope_shared.evaluation.harness import make_split
from scope_shared.metrics import length_errors, median_abs_rel_error
from scope_shared.evaluation.scope_routers import SCOPE_ESTIMATORS, ScopeRouter


def length_run(
    table: RoutingTable,
    embeddings: np.ndarray,
    seed: int,
    unseen: Sequence[str] = (),
    n_anchors: int | None = None,
    estimators: Sequence[str] | None = None,
    embedder_name: str = "embedder",
) -> dict[str, dict[str, float | None]]:
    """Per estimator (and ``per-model-median``): length errors on the test part (held-out models only
    when ``unseen``), and cost-per-call error where the table has real costs."""
    if table.output_tokens is None:
        raise ValueError(f"{table.name} has no output-token counts")
    if not np.isfinite(table.scores).any():
        table = replace(table, scores=np.where(np.isfinite(table.output_tokens), 0.5, np.nan))
    split, truth = make_split(table, embeddings, seed, unseen=unseen, n_anchors=n_anchors, embedder_name=embedder_name)
    cols = [split.models.index(m) for m in (unseen or split.models)]
    true_tok = truth.tokens[:, cols]
    real_cost = table.cost is not None
    out: dict[str, dict[str, float | None]] = {}
    base_tok = np.broadcast_to(split.median_output_tokens()[None, :], truth.tokens.shape)[:, cols]
    out["per-model-median"] = length_errors(base_tok, true_tok)
    if real_cost:
        out["per-model-median"]["cost_mare"] = median_abs_rel_error(split.expected_costs()[:, cols], truth.costs[:, cols])
    for name in estimators or list(SCOPE_ESTIMATORS):
        router = ScopeRouter(name)
        router.fit(split)
        res = router.route(split)
        out[name] = length_errors(res.output_tokens[:, cols], true_tok)
        if real_cost:
            out[name]["cost_mare"] = median_abs_rel_error(res.expected_cost[:, cols], truth.costs[:, cols])
    return out
