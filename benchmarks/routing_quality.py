"""Routing-quality benchmark: SCOPE routers against the literature's baselines, same split, same costs.

    PYTHONPATH=. HF_HUB_OFFLINE=1 SCOPE_DATA_DIR=../shared/data nice -n 10 \
        python benchmarks/routing_quality.py --dataset llmrouter-9 --length

For each split seed (default five) the unique questions are split 80/20 (stratified by benchmark)
into history and test parts; every router learns from the history part only (hyperparameters on a
validation part of it) and routes the test part under the same tradeoff sweep. ``seen``: all models
in the history; ``unseen``: the held-out models keep only N anchor outcomes (closed-set routers are
retrained with them). Prints one table per setting, writes ``benchmarks/results/routing_quality*.json``
(means over seeds, spreads under ``*_std``) and a PNG of all curves (seed 0).

``--embedders minilm,fast`` runs the same routers, seeds and settings once per embedder (the first is
the main result) and prints AUC / AUROC side by side, with the difference to the first:

    nice -n 10 python benchmarks/routing_quality.py --dataset routerbench-11 --embedders minilm,fast \
        --routers scope-knn --out benchmarks/results/embedders_routerbench-11.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from scope_shared.data import (
    dataset_path,
    load_llmrouter9,
    load_routerarena2,
    load_routerbench11,
)
from scope_shared.embed_cache import embed_with_cache
from scope_shared.embedder import as_embedder
from scope_shared.evaluation.closed_set import EmbeddingKNNRouter, LogisticRouter, MatrixFactorizationRouter, MLPRouter
from scope_shared.evaluation.harness import CPU_USD_PER_HOUR, evaluate, make_split
from scope_shared.evaluation.metrics import reference, summarize
from scope_shared.evaluation.routers import AlwaysRouter, OracleRouter, RandomMixRouter
from scope_shared.evaluation.scope_routers import SCOPE_ESTIMATORS, ScopeRouter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from length_quality import length_sections  # noqa: E402

LOADERS = {"llmrouter-9": load_llmrouter9, "routerbench-11": load_routerbench11, "routerarena-2": load_routerarena2}
#: embed only the last characters of a prompt where few-shot examples come first (MiniLM reads ~256 tokens)
EMBED_TAIL = {"routerbench-11": 1000}
#: held-out models for the unseen setting: one strong, one mid, one weak (by overall accuracy)
UNSEEN = {
    "llmrouter-9": ["llama-3.1-nemotron-51b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3"],
    "routerbench-11": ["gpt-4-1106-preview", "gpt-3.5-turbo-1106", "WizardLM/WizardLM-13B-V1.2"],
}
FIGS = ["max_accuracy", "gain_over_bsm", "auc", "aiq", "cost_saving_at_bsm", "pgr", "apgr", "cpt50", "cpt80",
        "auroc", "ece", "brier", "length_mare", "length_within_band", "cost_mare"]


def make_routers(names: list[str] | None) -> list:
    routers = [RandomMixRouter(), AlwaysRouter("cheapest"), AlwaysRouter("bsm"), LogisticRouter(), MLPRouter(),
               EmbeddingKNNRouter(), MatrixFactorizationRouter()] + [ScopeRouter(n) for n in SCOPE_ESTIMATORS]
    return [r for r in routers if not names or r.name in names]


def embed_seconds_per_query(embedder, texts: list[str], n: int = 32) -> float:
    """Process CPU seconds to embed one query, batched (new texts, so no cache answers; after a warm-up)."""
    embedder.embed([t + " !" for t in texts[:8]], show_progress=False)
    sample = [t + " ?" for t in texts[:n]]
    t0 = time.process_time()
    embedder.embed(sample, show_progress=False)
    return (time.process_time() - t0) / len(sample)


def _mean_std(vals: list) -> tuple[float | None, float | None, int]:
    xs = [v for v in vals if v is not None and math.isfinite(v)]
    if not xs:
        return None, None, 0
    return float(np.mean(xs)), float(np.std(xs)), len(xs)


def aggregate(per_seed: list[dict]) -> dict:
    out: dict = {}
    for key in per_seed[0]:
        vals = [d.get(key) for d in per_seed]
        if all(isinstance(v, (int, float)) or v is None for v in vals):
            m, s, n = _mean_std(vals)
            out[key], out[f"{key}_std"] = m, s
            if n < len(vals):
                out[f"{key}_seeds"] = n  # seeds where the figure exists (e.g. BSM accuracy reached)
        else:
            out[key] = vals[0]
    return out


def run_setting(table, embs, seeds, args, embed_s, unseen, curves, embedder_name="all-MiniLM-L6-v2") -> dict:
    rows: dict[str, list[dict]] = {}
    kinds: dict[str, str] = {}
    bsm_rows, oracle_rows = [], []
    for seed in seeds:
        split, truth = make_split(table, embs, seed, args.test_size, unseen, args.n_anchors if unseen else None,
                                  embedder_name=embedder_name)
        ref = reference(split.models, truth.scores, truth.costs)
        bsm_rows.append({"model": ref.models[ref.bsm_index], "accuracy": ref.bsm.accuracy, "cost": ref.bsm.cost,
                         "cheapest_model": ref.models[ref.cheapest_index], "cheapest_accuracy": ref.cheapest.accuracy,
                         "cheapest_cost": ref.cheapest.cost})
        orc = evaluate(OracleRouter(truth.scores, truth.costs), split, truth, ref)
        oracle_rows.append({"accuracy": ref.oracle.accuracy, "cost": ref.oracle.cost, "auc": orc.figures["auc"],
                            "aiq": orc.figures["aiq"]})
        if seed == seeds[0]:
            curves["oracle"] = [(p.cost, p.accuracy) for p in orc.points]
            curves["_models"] = [(m, p.cost, p.accuracy) for m, p in zip(ref.models, ref.model_points)]
            curves["_bsm"] = (ref.bsm.cost, ref.bsm.accuracy)
            curves["_oracle"] = (ref.oracle.cost, ref.oracle.accuracy)
        for router in make_routers(args.routers):
            res = evaluate(router, split, truth, ref, embed_s, models=unseen or None)
            kinds[res.name] = router.kind
            rows.setdefault(res.name, []).append(
                {**res.figures, "overhead_usd_per_query": res.overhead_usd, "fit_s": res.fit_s,
                 "predict_s": res.predict_s, **{f"chosen_{k}": v for k, v in res.chosen.items()}})
            if seed == seeds[0]:
                curves[res.name] = [(p.cost, p.accuracy) for p in res.points]
            print(f"  seed {seed} {res.name:<16} auc {res.figures['auc']:.4f} max {res.figures['max_accuracy']:.4f} "
                  f"fit {res.fit_s:.1f}s", file=sys.stderr, flush=True)
    routers = {name: {"kind": kinds[name], **aggregate(r)} for name, r in rows.items()}
    bsm = aggregate(bsm_rows)
    bsm["models_per_seed"] = [r["model"] for r in bsm_rows]
    return {"bsm": bsm, "oracle": aggregate(oracle_rows), "routers": routers,
            **({"unseen_models": unseen, "n_anchors": args.n_anchors} if unseen else {})}


def _fmt(x, pct=False, digits=3) -> str:
    if x is None:
        return "-"
    return f"{x:.1%}" if pct else f"{x:.{digits}f}"


def print_table(title: str, setting: dict) -> None:
    b, o = setting["bsm"], setting["oracle"]
    print(f"\n{title}")
    print(f"  BSM {b['model']}: acc {b['accuracy']:.3f}, ${b['cost'] * 1000:.4f}/1k q;  oracle: acc {o['accuracy']:.3f} "
          f"${o['cost'] * 1000:.4f}/1k q, AUC {o['auc']:.3f}")
    head = (f"  {'router':<16}{'kind':<9}{'max acc':>13}{'AUC':>13}{'AIQ':>7}{'save@BSM':>10}{'PGR':>7}{'APGR':>7}"
            f"{'CPT50':>7}{'CPT80':>7}{'AUROC':>7}{'ECE':>7}{'Brier':>7}{'ovh $/1k':>10}")
    print(head)
    for name, r in setting["routers"].items():
        save = _fmt(r["cost_saving_at_bsm"], pct=True)
        if r.get("cost_saving_at_bsm_seeds") is not None and r["cost_saving_at_bsm"] is not None:
            save += f"({r['cost_saving_at_bsm_seeds']})"
        print(f"  {name:<16}{r['kind']:<9}{_fmt(r['max_accuracy'])}±{_fmt(r['max_accuracy_std'])}"
              f" {_fmt(r['auc'])}±{_fmt(r['auc_std'])}{_fmt(r['aiq']):>7}{save:>10}{_fmt(r['pgr']):>7}"
              f"{_fmt(r['apgr']):>7}{_fmt(r['cpt50']):>7}{_fmt(r['cpt80']):>7}{_fmt(r['auroc']):>7}{_fmt(r['ece']):>7}"
              f"{_fmt(r['brier']):>7}{r['overhead_usd_per_query'] * 1000:>10.2e}")


def plot(curves_by_setting: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves_by_setting), figsize=(7 * len(curves_by_setting), 5.5), squeeze=False)
    for ax, (setting, curves) in zip(axes[0], curves_by_setting.items()):
        for name, pts in curves.items():
            if name.startswith("_"):
                continue
            pts = sorted(pts)
            style = "-" if name.startswith("scope") else "--" if name != "oracle" else ":"
            color = "black" if name == "oracle" else "darkcyan" if name.startswith("scope") else None
            ax.plot([c for c, _ in pts], [a for _, a in pts], style, marker=".", ms=4, label=name,
                    lw=2.5 if name.startswith("scope") else 1.2, color=color, zorder=3 if color else 2)
        for m, c, a in curves["_models"]:
            ax.plot(c, a, "o", color="grey", ms=5)
            ax.annotate(m, (c, a), fontsize=6, color="grey")
        ax.plot(*curves["_bsm"], "*", ms=16, color="red", label="BSM")
        ax.plot(*curves["_oracle"], "P", ms=12, color="black", label="oracle (cheapest correct)")
        ax.set_xscale("log")
        ax.set_xlabel("mean USD per query (incl. router overhead), log scale")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{title}: {setting} (seed 0)")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="llmrouter-9", choices=sorted(LOADERS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--settings", nargs="+", default=["seen", "unseen"], choices=["seen", "unseen"])
    ap.add_argument("--unseen", nargs="+", default=None, help="held-out models (default: strong, mid, weak)")
    ap.add_argument("--n-anchors", type=int, default=50, help="anchor outcomes of each held-out model (20/50/200)")
    ap.add_argument("--routers", nargs="+", default=None, help="only these routers")
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--length", action="store_true", help="add the length section (routerarena-2, alpacaeval)")
    ap.add_argument("--quick", action="store_true", help="one seed (a smoke run)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/routing_quality[_DATASET].json)")
    ap.add_argument("--embedders", default=None,
                    help="compare embedders by name, e.g. minilm,fast (the first gives the main result)")
    ap.add_argument(
        "--reasoner-dir", default=None,
        help="local reasoning-predictor checkpoint: adds scope-reasoning (also $SCOPE_REASONER_DIR; GPU advised)",
    )
    args = ap.parse_args(argv)
    from scope_shared.estimators.reasoning.registry import register_reasoning_estimator

    register_reasoning_estimator(args.reasoner_dir)
    seeds = args.seeds[:1] if args.quick else args.seeds
    results_dir = Path(__file__).resolve().parent / "results"
    suffix = "" if args.dataset == "llmrouter-9" else f"_{args.dataset}"
    out = Path(args.out) if args.out else results_dir / f"routing_quality{suffix}.json"

    table = LOADERS[args.dataset](dataset_path(args.dataset))
    tail = EMBED_TAIL.get(args.dataset)
    texts = [q[-tail:] for q in table.questions] if tail else table.questions
    unseen = args.unseen or UNSEEN.get(args.dataset, [])
    names = args.embedders.split(",") if args.embedders else [None]
    result: dict = {"dataset": args.dataset, "seeds": seeds, "settings": {}}
    t0 = time.time()
    main_curves: dict = {}
    for i, name in enumerate(names):
        embedder = as_embedder(name)
        run = run_embedder(table, embedder, texts, seeds, args, unseen, main_curves if i == 0 else {})
        if i == 0:
            main_name, embed_s = embedder.name, run["embed_s"]
            result["settings"] = run["settings"]
        if len(names) > 1:
            result.setdefault("embedders", {})[name] = {"recorded_name": embedder.name, **run}
    result["assumptions"] = {
        "notes": table.notes,
        "cost": "mean USD per test query: real cost where the data has it, else card price x (input tokens ~ "
                "chars/4 + output tokens); plus each router's own overhead",
        "router_overhead": f"CPU seconds per query (query embedding with {main_name}: {embed_s * 1000:.1f} ms "
                           f"process CPU time measured, plus the router's measured prediction time) priced at ${CPU_USD_PER_HOUR}/CPU-hour",
        "split": f"unique questions, stratified by benchmark, test_size={args.test_size}; hyperparameters on a "
                 "seeded 20% validation part of the history",
        "unseen": f"held-out models keep {args.n_anchors} outcomes on the same random history questions; "
                  "closed-set routers are retrained with them; AUROC/ECE/Brier are over the held-out models only",
        "lambda_grid": "0, 40 geometric values from 1e-3 to 1e3 divided by the median model cost in the history, inf",
        "figures": "AUC/AIQ: step frontier / convex hull, cost normalised between cheapest and most expensive model "
                   "(0 below a router's cheapest point); APGR/CPT: weak = cheapest model, strong = BSM, cost "
                   "normalised between them; PGR: (max acc - worst model) / (oracle - worst model)",
        "embed_tail_chars": tail,
    }
    if args.length:
        result["length"] = length_sections(seeds, as_embedder(names[0]))
    result["elapsed_s"] = round(time.time() - t0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    for setting, res in result["settings"].items():
        extra = f" (held out: {', '.join(unseen)}; N = {args.n_anchors})" if setting == "unseen" else ""
        print_table(f"{args.dataset} / {setting}{extra} / seeds {seeds}", res)
    for note in table.notes:
        print(f"  note: {note}")
    print(f"  router overhead: {result['assumptions']['router_overhead']}")
    if "length" in result:
        print_length(result["length"])
    if "embedders" in result:
        print_embedders(args.dataset, result["embedders"])
    plot(main_curves, out.with_suffix(".png"), args.dataset)
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return result


def run_embedder(table, embedder, texts, seeds, args, unseen, curves) -> dict:
    """Every setting with one embedder: its vectors (disk-cached), its CPU time per query, the results."""
    embs = embed_with_cache(embedder, texts, show_progress=True)
    embed_s = embed_seconds_per_query(embedder, texts)
    settings = {}
    for setting in args.settings:
        if setting == "unseen" and not unseen:
            continue
        curves[setting] = {}
        print(f"{embedder.name} / {setting}: {len(seeds)} seed(s)", file=sys.stderr)
        settings[setting] = run_setting(table, embs, seeds, args, embed_s, unseen if setting == "unseen" else [],
                                        curves[setting], embedder_name=embedder.name)
    return {"embed_s": embed_s, "settings": settings}


def print_embedders(dataset: str, by_embedder: dict) -> None:
    """AUC / AUROC per router and setting, one column pair per embedder, with the gap to the first."""
    names = list(by_embedder)
    first = by_embedder[names[0]]
    print(f"\n{dataset}: embedders compared (mean over seeds; delta = minus {names[0]}, in points)")
    for setting, res in first["settings"].items():
        print(f"  {setting}")
        for router in res["routers"]:
            cells = []
            for n in names:
                r = by_embedder[n]["settings"][setting]["routers"][router]
                b = res["routers"][router]
                cell = f"{n}: AUC {_fmt(r['auc'])}±{_fmt(r['auc_std'])} AUROC {_fmt(r['auroc'])}"
                if n != names[0] and r["auc"] is not None and b["auc"] is not None:
                    cell += f" (dAUC {100 * (r['auc'] - b['auc']):+.2f}"
                    cell += f", dAUROC {100 * (r['auroc'] - b['auroc']):+.2f})" if r["auroc"] is not None else ")"
                cells.append(cell)
            print(f"    {router:<16}" + " | ".join(cells))
    print("  CPU ms per query embedding: " + ", ".join(f"{n} {1000 * by_embedder[n]['embed_s']:.2f}" for n in names))


def print_length(length: dict) -> None:
    for ds, sec in length.items():
        print(f"\nlength / {ds}: {sec.get('setting', '')}")
        for name, r in sec["estimators"].items():
            cost = f"  cost MARE {_fmt(r.get('cost_mare'))}" if r.get("cost_mare") is not None else ""
            print(f"  {name:<22} token MARE {_fmt(r['median_abs_rel_error'])}±{_fmt(r['median_abs_rel_error_std'])}"
                  f"  within band {_fmt(r['within_band'], pct=True)}{cost}")


if __name__ == "__main__":
    main()
