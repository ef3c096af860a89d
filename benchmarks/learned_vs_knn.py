"""Learned estimator vs kNN vs closed-set baselines on llmrouter-9 (deduplicated, seeded splits).

For each seed: ``RoutingTable.split(0.2, seed)`` gives the history part and the test part; the
learned estimator trains on the history part only (its validation questions are carved out of it)
and its calibrator is fitted on those validation questions (leave-one-out predictions). Measured on
the test part, in the same run:

- prediction: pooled AUROC of ``p_correct`` (label: score >= 0.5), ECE before / after calibration;
- routing: for a sweep of tradeoffs lambda, each query goes to argmax p - lambda * cost; the points
  (mean cost, mean score) give the library's curve figures (`scope_shared.evaluation.summarize`, as
  in routing_quality.py): AUC under the step frontier over cost normalised between the cheapest and
  the most expensive model; max accuracy and gain over the best single model (BSM) of the test part;
  cost saving at BSM accuracy.
- unseen models: ``--unseen`` models are removed from training; they keep only N random history
  outcomes (``--n-unseen``); kNN, learned and the closed-set baseline (retrained on those N) route
  among all models.

llmrouter-9 has no output-token counts: cost = price x (input ~ chars/4 + 256 assumed output tokens),
for routing and for scoring alike. Closed-set baseline: the benchmark's per-model logistic regression
(`scope_shared.evaluation.closed_set.LogisticRouter`, C=1) on the MiniLM embeddings.

Run:  PYTHONPATH=$PWD python benchmarks/learned_vs_knn.py --seeds 0 1 2
Writes benchmarks/results/learned_vs_knn.json and .png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from scope_shared.data import dataset_path, load_llmrouter9
from scope_shared.data.table import stratified_split
from scope_shared.embedders import default_embedder, embed_with_cache
from scope_shared.estimators import KNNEstimator
from scope_shared.estimators.calibration import calibrate, reliability_curve
from scope_shared.estimators.learned import LearnedConfig, LearnedEstimator
from scope_shared.evaluation import Reference, curve, frontier, reference, summarize
from scope_shared.evaluation.closed_set import LogisticRouter
from scope_shared.evaluation.routers import EvalSplit, sweep
from scope_shared.metrics import auroc, brier, ece

sys.path.insert(0, str(Path(__file__).resolve().parent))
from routing_quality import TRIOS  # noqa: E402

OUT = Path(__file__).parent / "results"
LAMBDAS = np.concatenate([[0.0], np.logspace(1, 6, 80)])
UNSEEN = TRIOS["llmrouter-9"][0]  # the routing benchmark's default held-out trio


def frontier_metrics(p: np.ndarray, scores: np.ndarray, cost: np.ndarray, ref: Reference) -> dict:
    """Routing figures of predictions ``p`` on the test part: the library's curve figures
    (`scope_shared.evaluation.summarize`) of the tradeoff sweep, and the frontier for the plot."""
    points = curve(scores, cost, sweep(p, cost, LAMBDAS))
    fig = summarize(points, ref)
    front = frontier(points)
    return {
        "auc": fig["auc"],
        "max_accuracy": fig["max_accuracy"],
        "gain_over_bsm_points": 100 * fig["gain_over_bsm"],
        "saving_at_bsm": fig["cost_saving_at_bsm"],
        "frontier": [[pt.cost for pt in front], [pt.accuracy for pt in front]],
    }


def prediction_metrics(p: np.ndarray, scores: np.ndarray) -> dict:
    return {"auroc": auroc(p, scores), "ece": ece(p, scores), "brier": brier(p, scores)}


def logistic_baseline(table, tr, te, emb: np.ndarray, hist_scores: np.ndarray, seed: int) -> np.ndarray:
    """The closed-set per-model logistic regression of the routing-quality benchmark (C=1)."""
    split = EvalSplit(
        dataset=table.name, seed=seed, models=list(table.models), cards=dict(table.cards),
        hist_questions=[table.questions[i] for i in tr], hist_benchmarks=[table.benchmarks[i] for i in tr],
        hist_emb=emb[tr], hist_scores=hist_scores, hist_tokens=None,
        test_questions=[table.questions[i] for i in te], test_emb=emb[te],
    )
    router = LogisticRouter(cs=(1.0,))
    router.fit(split)
    return router.predict(split)


def run_setting(table, emb, tr, te, seed: int, unseen: tuple[str, ...], n_unseen: int, config: LearnedConfig | None = None) -> dict:
    hist_table = table.subset(tr)
    if unseen:
        rng = np.random.default_rng(seed + 100)
        for m in unseen:  # keep only n_unseen random outcomes of each held-out model
            j = table.models.index(m)
            drop = rng.permutation(len(tr))[n_unseen:]
            hist_table.scores[drop, j] = np.nan
    history = hist_table.to_history(None, show_progress=False, embeddings=emb[tr])
    models = list(table.models)
    train_models = [m for m in models if m not in unseen]
    test_scores = table.scores[te]
    cost = table.subset(te).call_costs()
    ref = reference(models, test_scores, cost)
    q = emb[te]
    preds: dict[str, np.ndarray] = {}
    t0 = time.time()
    learned = LearnedEstimator(replace(config or LearnedConfig(), seed=seed))
    report = learned.fit(history, models=train_models, show_progress=True)
    train_s = time.time() - t0
    val_ids = np.array(report.val_question_ids)
    knn = KNNEstimator()
    preds["knn"] = knn.predict_for([""] * len(te), q, models, history).p_correct
    preds["knn+platt"] = calibrate(knn, history, val_ids, "platt", train_models).predict_for([""] * len(te), q, models, history).p_correct
    preds["learned"] = learned.predict_for([""] * len(te), q, models, history).p_correct
    for method in ("platt", "isotonic"):
        cal = calibrate(learned, history, val_ids, method, train_models)
        preds[f"learned+{method}"] = cal.predict_for([""] * len(te), q, models, history).p_correct
    preds["logreg (closed set)"] = logistic_baseline(table, tr, te, emb, hist_table.scores, seed)
    res: dict = {"train_seconds": train_s, "best_epoch": report.best_epoch, "routers": {}}
    for name, p in preds.items():
        res["routers"][name] = {**prediction_metrics(p, test_scores), **frontier_metrics(p, test_scores, cost, ref)}
        if name in ("knn", "learned", "learned+platt", "learned+isotonic", "knn+platt"):
            res["routers"][name]["reliability"] = reliability_curve(p, test_scores)
    oracle_p = np.nan_to_num(test_scores)
    res["routers"]["oracle"] = frontier_metrics(oracle_p, test_scores, cost, ref)
    res["bsm"] = {"model": models[ref.bsm_index], "accuracy": ref.bsm.accuracy, "cost": ref.bsm.cost}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-unseen", type=int, default=50)
    ap.add_argument("--unseen", nargs="*", default=list(UNSEEN))
    ap.add_argument("--out", default=str(OUT / "learned_vs_knn"))
    args = ap.parse_args()
    table = load_llmrouter9(dataset_path("llmrouter-9"))
    emb = embed_with_cache(default_embedder(), table.questions, show_progress=True)
    runs = []
    for seed in args.seeds:
        tr, te = stratified_split(table.benchmarks, 0.2, seed)  # the indices RoutingTable.split uses
        seen = run_setting(table, emb, tr, te, seed, (), 0)
        unseen = run_setting(table, emb, tr, te, seed, tuple(args.unseen), args.n_unseen)
        runs.append({"seed": seed, "seen": seen, "unseen": unseen})
        _print(seed, seen, unseen)
    summary = _summary(runs)
    print(json.dumps(summary, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps({"summary": summary, "runs": runs, "unseen_models": args.unseen, "n_unseen": args.n_unseen}, indent=1))
    _plot(runs[0], args.out + ".png")


def _print(seed: int, seen: dict, unseen: dict) -> None:
    print(f"\nseed {seed}: BSM {seen['bsm']}")
    for setting, res in (("seen", seen), ("unseen", unseen)):
        print(f"--- {setting} (learned trained in {res['train_seconds']:.0f}s)")
        print(f"{'router':22s} {'AUROC':>6} {'ECE':>6} {'AUC':>6} {'maxacc':>6} {'gain':>6} {'saving@BSM':>10}")
        for name, r in res["routers"].items():
            sv = "n/a" if r.get("saving_at_bsm") is None else f"{100 * r['saving_at_bsm']:.1f}%"
            print(f"{name:22s} {r.get('auroc', float('nan')):6.4f} {r.get('ece', float('nan')):6.4f} {r['auc']:6.4f} "
                  f"{r['max_accuracy']:6.4f} {r['gain_over_bsm_points']:6.2f} {sv:>10}")


def _summary(runs: list[dict]) -> dict:
    out: dict = {}
    for setting in ("seen", "unseen"):
        out[setting] = {}
        for name in runs[0][setting]["routers"]:
            rs = [r[setting]["routers"][name] for r in runs]
            med = lambda key: float(np.median([x[key] if x.get(key) is not None else np.nan for x in rs]))  # noqa: E731
            out[setting][name] = {k: med(k) for k in ("auroc", "ece", "auc", "max_accuracy", "gain_over_bsm_points", "saving_at_bsm") if k in rs[0]}
        kn, le = out[setting]["knn"], out[setting]["learned+platt"]
        out[setting]["ratio_auc_learned_over_knn"] = le["auc"] / kn["auc"]
    return out


def _plot(run: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for ax, setting in zip(axes[:2], ("seen", "unseen")):
        for name, r in run[setting]["routers"].items():
            xs, ys = r["frontier"]
            ax.plot(np.array(xs) * 1e6, ys, label=name, marker="." if name != "oracle" else None)
        ax.axhline(run[setting]["bsm"]["accuracy"], color="grey", ls=":", label="BSM accuracy")
        ax.set(title=f"{setting} models, seed {run['seed']}", xlabel="mean cost per query (micro-USD)", ylabel="accuracy")
        ax.legend(fontsize=7)
    ax = axes[2]
    for name in ("knn", "learned", "learned+platt", "knn+platt"):
        rc = run["seen"]["routers"][name]["reliability"]
        ax.plot(rc["mean_p"], rc["mean_y"], marker="o", label=name)
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.set(title="reliability (seen, test part)", xlabel="predicted p_correct", ylabel="observed score")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
