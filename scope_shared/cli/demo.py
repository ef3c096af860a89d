"""The routing demo (``scope demo`` / ``make demo``) on the bundled real data, llmrouter-9.

Runs from the anchor pack inside the package (questions, outcomes and their embeddings), so a plain
``pip install`` needs no data folder. Builds the history from the training split, routes the held-out split
with the router's default knob and three other knob settings, and prints what was chosen and what it
cost next to the best single model (BSM) and the cheapest model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from scope_shared.data import RoutingTable
from scope_shared.embedders import default_embedder, embed_with_cache
from scope_shared.evaluation import Point, choice_point, cost_saving_at, model_points
from scope_shared.evaluation.routers import lambda_grid
from scope_shared.onboarding.pack import load_pack
from scope_shared.routing.knobs import Knob, make_knob
from scope_shared.routing.router import Router

SETTINGS: list[tuple[str, Knob]] = [
    ("most accurate (tradeoff=0)", make_knob("tradeoff", 0.0)),
    ("balanced (min_accuracy=0.8)", make_knob("min_accuracy", 0.8)),
    ("thrifty (tradeoff=1000 per $)", make_knob("tradeoff", 1000.0)),
]


@dataclass
class DemoResult:
    """What the demo measured (returned for tests and notes)."""

    settings: dict[str, tuple[Point, dict[str, float]]]
    bsm: tuple[str, Point]
    cheapest: tuple[str, Point]
    saving_at_bsm: float | None
    notes: list[str]


def _table_row(label: str, pt: Point, share: dict[str, float] | str) -> str:
    if isinstance(share, dict):
        share = ", ".join(f"{m} {s:.0%}" for m, s in sorted(share.items(), key=lambda x: -x[1]) if s >= 0.005)
    return f"  {label:<34} acc {pt.accuracy:6.1%}   ${pt.cost * 1000:8.4f} per 1k queries   {share}"


def run_demo(seed: int = 0, test_size: float = 0.2, table: RoutingTable | None = None, verbose: bool = True) -> DemoResult:
    """Run the demo and print its tables; returns the figures."""
    say = print if verbose else (lambda *a, **k: None)
    embedder = default_embedder()
    if table is None:  # the bundled anchor pack: llmrouter-9 with its embeddings, no data folder needed
        pack = load_pack()
        table, embs = pack.to_table(), pack.vectors(range(len(pack)))
        embedder.prime(table.questions, embs)  # held-out questions are looked up, not re-embedded
    else:
        embs = embed_with_cache(embedder, table.questions, show_progress=verbose)
    say(f"{table.name}: {len(table)} unique questions x {len(table.models)} models; split seed {seed}")
    train_idx, test_idx = _split(table, test_size, seed)
    train, test = table.subset(train_idx), table.subset(test_idx)
    history = train.to_history(embedder, show_progress=verbose, embeddings=embs[train_idx])
    router = Router(train.cards.values(), history, embedder=embedder)
    assert not any(q in history for q in test.questions), "held-out text leaked into the history"
    say(f"history: {len(history)} questions; held out: {len(test)} questions")

    scores, costs = test.scores, test.call_costs()
    per_model = model_points(scores, costs)
    bsm_j = int(np.argmax([p.accuracy for p in per_model]))
    cheap_j = int(np.argmin([p.cost for p in per_model]))
    estimates = router.estimate_batch(test.questions, show_progress=verbose)
    col = {m: j for j, m in enumerate(test.models)}

    def run(knobs: Knob | list[Knob]) -> tuple[Point, dict[str, float]]:
        per_query = knobs if isinstance(knobs, list) else [knobs] * len(estimates)
        choice = np.array([col[router.decide(e, k).model] for e, k in zip(estimates, per_query)])
        counts = Counter(test.models[j] for j in choice)
        return choice_point(scores, costs, choice), {m: counts[m] / len(choice) for m in test.models}

    default = router.default_knob
    defaults = router.default_knobs(router.embed(test.questions))  # what a call with no knob gets
    results = {f"the default ({default})": run(defaults), **{label: run(knob) for label, knob in SETTINGS}}
    grid = lambda_grid(np.nanmean(train.call_costs(), axis=0))  # the benchmark's λ grid, from the history part
    sweep = [run(make_knob("tradeoff", lam))[0] for lam in grid if np.isfinite(lam)]
    bsm = per_model[bsm_j]
    saving = cost_saving_at(sweep, bsm.accuracy, bsm.cost)

    say("")
    say(f"Routing {len(test)} held-out questions ({router.estimator.name} estimator, the default; bundled all-MiniLM-L6-v2):")
    for label, (pt, share) in results.items():
        say(_table_row(label, pt, share))
    say(_table_row("best single model", bsm, test.models[bsm_j]))
    say(_table_row("cheapest model", per_model[cheap_j], test.models[cheap_j]))
    for note in table.notes:
        say(f"  note: {note}")
    say(f"The default knob ({default}): {router.default_knob_reason}.")
    d_pt = results[f"the default ({default})"][0]
    say(f"The default: {d_pt.accuracy - bsm.accuracy:+.1%} accuracy against the best single model, at "
        f"{d_pt.cost / bsm.cost:.0%} of its cost.")
    if saving is not None:
        say(f"At best-single-model accuracy ({bsm.accuracy:.1%}), routing costs {saving:.0%} less.")
    else:
        best = max(sweep, key=lambda p: p.accuracy)
        say(
            f"Routing did not reach best-single-model accuracy ({bsm.accuracy:.1%}); its best was "
            f"{best.accuracy:.1%} at {1 - best.cost / bsm.cost:.0%} less cost."
        )
    return DemoResult(
        settings=results,
        bsm=(test.models[bsm_j], bsm),
        cheapest=(test.models[cheap_j], per_model[cheap_j]),
        saving_at_bsm=saving,
        notes=list(table.notes),
    )


def _split(table: RoutingTable, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from scope_shared.data import stratified_split

    return stratified_split(table.benchmarks, test_size, seed)
