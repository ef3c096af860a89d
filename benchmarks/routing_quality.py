"""Routing-quality benchmark: SCOPE routers against the literature's baselines, same split, same costs.

    PYTHONPATH=. HF_HUB_OFFLINE=1 SCOPE_DATA_DIR=../shared/data nice -n 10 \
        python benchmarks/routing_quality.py --dataset llmrouter-9 --length

For each split seed (default five) every router learns from the history part only (hyperparameters
on a validation part of it) and routes the test part under the same tradeoff sweep. Settings
(`scope_shared.evaluation.settings`): ``seen`` (unique questions split 80/20, stratified by
benchmark, all models in the history); ``unseen`` (the held-out models keep only N anchor outcomes,
on random history questions; closed-set routers are retrained with them); ``onboarding`` (as unseen,
but the anchors are those `suggest_questions` picks, N in --onboarding-n); ``ood`` (a seeded random
third of the benchmarks left out of the history, tested on all their questions; one draw per seed).
The prior router (each model's history accuracy, ignoring the question) runs in every setting.
Prints one table per setting (held-out settings: per-model level error and AUROC; per-seed AUC
against the prior), writes ``benchmarks/results/routing_quality*.json`` (means over seeds, spreads
under ``*_std``, per-seed figures under ``per_seed``) and a PNG of all curves (first seed).

``--embedders minilm,fast`` runs the same routers, seeds and settings once per embedder (the first is
the main result) and prints AUC / AUROC side by side, with the difference to the first; ``routing``
is the routing-tuned embedder, trained anew on each split's history part (`tuned_embedder`):

    nice -n 10 python benchmarks/routing_quality.py --dataset routerbench-11 --embedders minilm,fast \
        --routers scope-knn --out benchmarks/results/embedders_routerbench-11.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from scope_shared.data import (
    dataset_path,
    stratified_split,
    load_llmrouter9,
    load_routerarena2,
    load_routerbench11,
)
from scope_shared.embedders import as_embedder, embed_with_cache
from scope_shared.embedders.tuning import TuningConfig
from scope_shared.evaluation.closed_set import EmbeddingKNNRouter, LogisticRouter, MatrixFactorizationRouter, MLPRouter
from scope_shared.evaluation.harness import CPU_USD_PER_HOUR, evaluate
from scope_shared.evaluation.curves import reference
from scope_shared.evaluation.routers import AlwaysRouter, OracleRouter, PriorRouter, RandomMixRouter
from scope_shared.evaluation.scope_routers import SCOPE_ESTIMATORS, ScopeRouter
from scope_shared.evaluation.settings import SETTING_KINDS, Setting, n_ood_benchmarks, setting_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from length_quality import length_sections  # noqa: E402
from routing_report import plot, print_draws, print_embedders, print_held_out, print_length, print_table  # noqa: E402
from tuned_embedder import BENCHMARK_CONFIG, TUNED, PerSplitTuned  # noqa: E402

LOADERS = {"llmrouter-9": load_llmrouter9, "routerbench-11": load_routerbench11, "routerarena-2": load_routerarena2}
#: embed only the last characters of a prompt where few-shot examples come first (MiniLM reads ~256 tokens)
EMBED_TAIL = {"routerbench-11": 1000}
#: held-out trios for the unseen and onboarding settings, the first being the default: each mixes
#: strengths (by overall accuracy) and, in the others, a specialist (a code model) or a weak-but-priced one
TRIOS = {
    "llmrouter-9": [
        ["llama-3.1-nemotron-51b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3"],
        ["llama-3.3-nemotron-super-49b-v1", "gemma-2-9b-it", "codegemma-7b"],
        ["llama-3.1-8b-instruct", "llama3-chatqa-1.5-70b", "llama3-chatqa-1.5-8b"],
    ],
    "routerbench-11": [
        ["gpt-4-1106-preview", "gpt-3.5-turbo-1106", "WizardLM/WizardLM-13B-V1.2"],
        ["zero-one-ai/Yi-34B-Chat", "claude-instant-v1", "meta/code-llama-instruct-34b-chat"],
        ["claude-v1", "mistralai/mixtral-8x7b-chat", "mistralai/mistral-7b-chat"],
    ],
}
UNSEEN = {name: trios[0] for name, trios in TRIOS.items()}
#: figures kept per seed (per draw, for ood) in the JSON beside the means
PER_SEED = ["auc", "auc_without_cpu", "aiq", "max_accuracy", "gain_over_bsm", "cost_saving_at_bsm", "cost_share_within_1pt", "auroc", "bias_mean", "abs_bias_mean",
            "auroc_per_model", "default_accuracy", "default_cost_share", "default_gap_to_bsm"]


def make_routers(names: list[str] | None) -> list:
    routers = [RandomMixRouter(), AlwaysRouter("cheapest"), AlwaysRouter("bsm"), PriorRouter(), LogisticRouter(), MLPRouter(),
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


def seed_result(table, embs, args, embed_s, setting: Setting, seed: int, setting_key: str,
                embedder_name: str) -> dict:
    """Every router on ``setting``'s split for one seed: figures, curves and what was drawn."""
    vectors = embs(setting, seed) if callable(embs) else embs  # a per-split tuned embedder trains here
    if getattr(args, "validation", False):  # the seed's history part only: its own split is the validation
        tr, _ = stratified_split(table.benchmarks, args.test_size, seed)
        drawn = setting_split(table.subset(tr), vectors[tr], setting, seed, args.test_size, embedder_name=embedder_name)
    else:
        drawn = setting_split(table, vectors, setting, seed, args.test_size, embedder_name=embedder_name)
    split, truth = drawn.split, drawn.truth
    ref = reference(split.models, truth.scores, truth.costs)
    out: dict = {"rows": {}, "kinds": {}, "per_model": {}, "curves": {}}
    out["bsm"] = {"model": ref.models[ref.bsm_index], "accuracy": ref.bsm.accuracy, "cost": ref.bsm.cost,
                  "cheapest_model": ref.models[ref.cheapest_index], "cheapest_accuracy": ref.cheapest.accuracy,
                  "cheapest_cost": ref.cheapest.cost}
    out["draw"] = {"seed": seed, "n_history": len(split.hist_questions), "n_test": len(split.test_questions),
                   "bsm_model": ref.models[ref.bsm_index], "bsm_accuracy": ref.bsm.accuracy,
                   **({"held_out_benchmarks": drawn.held_out_benchmarks} if drawn.held_out_benchmarks else {})}
    orc = evaluate(OracleRouter(truth.scores, truth.costs), split, truth, ref)
    out["oracle"] = {"accuracy": ref.oracle.accuracy, "cost": ref.oracle.cost, "auc": orc.figures["auc"],
                     "aiq": orc.figures["aiq"]}
    curves = out["curves"]
    curves["_seed"] = seed
    curves["_held_out_benchmarks"] = drawn.held_out_benchmarks
    curves["oracle"] = [(p.cost, p.accuracy) for p in orc.points]
    curves["_models"] = [(m, p.cost, p.accuracy) for m, p in zip(ref.models, ref.model_points)]
    curves["_bsm"] = (ref.bsm.cost, ref.bsm.accuracy)
    curves["_oracle"] = (ref.oracle.cost, ref.oracle.accuracy)
    for router in make_routers(args.routers):
        res = evaluate(router, split, truth, ref, embed_s, models=setting.held_out_models or None)
        out["kinds"][res.name] = router.kind
        out["rows"][res.name] = {**res.figures, "overhead_usd_per_query": res.overhead_usd, "fit_s": res.fit_s,
                                 "predict_s": res.predict_s, **{f"chosen_{k}": v for k, v in res.chosen.items()}}
        if setting.held_out_models and res.per_model:
            out["per_model"][res.name] = res.per_model
        curves[res.name] = [(p.cost, p.accuracy) for p in res.points]
        if getattr(args, "dump", None) and getattr(router, "last_estimates", None) is not None:
            dump = Path(args.dump) / f"{split.dataset}__{setting_key.replace('/', '_')}__{res.name}__seed{seed}.npz"
            dump.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(dump, p=router.last_estimates[0], cost=router.last_estimates[1], scores=truth.scores,
                                costs=truth.costs, bsm=np.array([ref.bsm.accuracy, ref.bsm.cost]))
        print(f"  {setting_key} seed {seed} {res.name:<16} auc {res.figures['auc']:.4f} "
              f"max {res.figures['max_accuracy']:.4f} fit {res.fit_s:.1f}s", file=sys.stderr, flush=True)
    return out


def run_setting(results: list[dict], seeds: list[int], setting: Setting, curves: dict) -> dict:
    """Means over seeds (per-seed figures kept) of one setting's `seed_result`s, in seed order."""
    rows: dict[str, list[dict]] = {}
    per_model: dict[str, list[dict]] = {}
    kinds: dict[str, str] = {}
    for res in results:
        kinds.update(res["kinds"])
        for name, row in res["rows"].items():
            rows.setdefault(name, []).append(row)
        for name, pm in res["per_model"].items():
            per_model.setdefault(name, []).append(pm)
    curves.update(results[0]["curves"])
    routers = {}
    for name, r in rows.items():
        routers[name] = {"kind": kinds[name], **aggregate(r),
                         "per_seed": [{"seed": s, **{k: row.get(k) for k in PER_SEED}} for s, row in zip(seeds, r)]}
        if name in per_model:
            routers[name]["per_model"] = {m: aggregate([pm[m] for pm in per_model[name]])
                                          for m in per_model[name][0]}
    bsm_rows = [res["bsm"] for res in results]
    bsm = aggregate(bsm_rows)
    bsm["models_per_seed"] = [r["model"] for r in bsm_rows]
    return {"bsm": bsm, "oracle": aggregate([res["oracle"] for res in results]), "routers": routers,
            "draws": [res["draw"] for res in results],
            **({"unseen_models": setting.held_out_models, "n_anchors": setting.n_anchors,
                "anchors": "suggested" if setting.kind == "onboarding" else "random"}
               if setting.held_out_models else {})}


_WORK: dict = {}


def _init_work(work: dict) -> None:
    _WORK.update(work)


def _seed_task(task: tuple) -> dict:
    key, setting, seed = task
    w = _WORK
    return seed_result(w["table"], w["embs"], w["args"], w["embed_s"], setting, seed, key, w["embedder_name"])


def embed_texts(embedder, texts: list[str]) -> np.ndarray:
    """The texts' vectors: the bundled pack's stored ones when every text is a pack question and the
    embedder is the one that made them (llmrouter-9 with the default embedder), else disk-cached."""
    from scope_shared.onboarding import load_pack

    pack = load_pack()
    if embedder.name == pack.embedder_name:
        index = {q.text: i for i, q in enumerate(pack.questions)}
        ids = [index.get(t.strip()) for t in texts]
        if all(i is not None for i in ids):
            return np.asarray(pack.embeddings[ids], np.float32)
    return embed_with_cache(embedder, texts, show_progress=True)


def run_embedder(table, embedder, texts, seeds, args, settings: list[tuple[str, Setting]], curves) -> dict:
    """Every setting with one embedder: its vectors (disk-cached), its CPU time per query, the results."""
    if isinstance(embedder, PerSplitTuned):  # trained per split, in this process (its reports are kept here)
        embs, embed_s = embedder, embed_seconds_per_query(embedder.uncached_base(), texts)  # same shape, same cost
    else:
        embs = embed_texts(embedder, texts)
        embed_s = embed_seconds_per_query(embedder, texts)
    tasks = [(key, setting, seed) for key, setting in settings for seed in seeds]
    _WORK.update(table=table, embs=embs, args=args, embed_s=embed_s, embedder_name=embedder.name)
    if getattr(args, "jobs", 1) > 1 and not isinstance(embedder, PerSplitTuned):  # (setting, seed) pairs in worker processes (spawned: no torch state forked)
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"), initializer=_init_work,
                                 initargs=(dict(_WORK),)) as pool:
            done = list(pool.map(_seed_task, tasks))
    else:
        done = [_seed_task(t) for t in tasks]
    out = {}
    for key, setting in settings:
        curves[key] = {}
        out[key] = run_setting([r for t, r in zip(tasks, done) if t[0] == key], seeds, setting, curves[key])
    tuning = {"tuning": embedder.reports} if isinstance(embedder, PerSplitTuned) else {}
    return {"embed_s": embed_s, "settings": out, **tuning}


def tuned_config(args) -> TuningConfig:
    """The per-split routing embedder's training: the benchmark's, with the options given."""
    options = {"val_model_fraction": args.tuned_val_models, "max_epochs": args.tuned_max_epochs,
               "centre": args.tuned_centre or None}
    return replace(BENCHMARK_CONFIG, **{k: v for k, v in options.items() if v is not None})


def ood_note(n_benchmarks: int) -> str:
    """How many benchmarks the ood setting leaves out (routerbench-11 has 3: a third is one)."""
    return f"{n_ood_benchmarks(n_benchmarks)} of {n_benchmarks} benchmarks (a third, at least one)"


def make_settings(args, trios: list[list[str]], n_benchmarks: int) -> list[tuple[str, Setting]]:
    """The settings asked for, each with its key in the results (held-out settings once per trio:
    ``unseen`` for the first trio, ``unseen/t1`` ... for the others); those the data set cannot have
    (no held-out models) are left out."""
    out = []
    for kind in args.settings:
        if kind == "seen":
            out.append(("seen", Setting("seen")))
        elif kind == "ood" and n_benchmarks >= 2:
            out.append(("ood", Setting("ood")))
        for t, unseen in enumerate(trios):
            tag = f"/t{t}" if t else ""
            if kind == "unseen" and unseen:
                out.append((f"unseen{tag}", Setting("unseen", tuple(unseen), args.n_anchors)))
            elif kind == "onboarding" and unseen:
                out.extend((f"onboarding-n{n}{tag}", Setting("onboarding", tuple(unseen), n)) for n in args.onboarding_n)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="llmrouter-9", choices=sorted(LOADERS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--settings", nargs="+", default=list(SETTING_KINDS), choices=list(SETTING_KINDS))
    ap.add_argument("--unseen", nargs="+", default=None, help="one held-out trio (default: the data set's trios)")
    ap.add_argument("--trios", type=int, nargs="+", default=None, help="which of the data set's trios (default all)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes over (setting, seed) pairs")
    ap.add_argument("--dump", default=None, help="folder: save each SCOPE router's test estimates and truth (npz) per setting and seed")
    ap.add_argument("--validation", action="store_true",
                    help="run on each seed's history part only (its own split is the validation): for choosing defaults")
    ap.add_argument("--n-anchors", type=int, default=50, help="random anchor outcomes of each held-out model (unseen)")
    ap.add_argument("--onboarding-n", type=int, nargs="+", default=[20, 50, 250],
                    help="suggested anchors of each held-out model (onboarding; one setting per N)")
    ap.add_argument("--routers", nargs="+", default=None, help="only these routers")
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--length", action="store_true", help="add the length section (routerarena-2, alpacaeval)")
    ap.add_argument("--quick", action="store_true", help="one seed (a smoke run)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/routing_quality[_DATASET].json)")
    ap.add_argument("--embedders", default=None,
                    help="compare embedders by name, e.g. minilm,fast,routing (the first gives the main result; "
                         "routing: tuned on each split's history part)")
    ap.add_argument("--tuned-val-models", type=float, default=None,
                    help="routing embedder: share of known models held out of its training as the stopping signal "
                         f"(default {BENCHMARK_CONFIG.val_model_fraction:.3g}: stop on held-out questions only)")
    ap.add_argument("--tuned-max-epochs", type=int, default=None,
                    help=f"routing embedder: epoch cap (default {BENCHMARK_CONFIG.max_epochs}; 0: the base table, no outcome training)")
    ap.add_argument("--tuned-centre", action="store_true", help="routing embedder: centre the base table on the history's questions first")
    ap.add_argument(
        "--reasoner-dir", default=None,
        help="local reasoning-predictor checkpoint: adds scope-reasoning (also $SCOPE_REASONER_DIR; GPU advised)",
    )
    args = ap.parse_args(argv)
    from scope_shared.evaluation.scope_routers import register_reasoning_estimator

    register_reasoning_estimator(args.reasoner_dir)
    seeds = args.seeds[:1] if args.quick else args.seeds
    results_dir = Path(__file__).resolve().parent / "results"
    suffix = "" if args.dataset == "llmrouter-9" else f"_{args.dataset}"
    out = Path(args.out) if args.out else results_dir / f"routing_quality{suffix}.json"

    table = LOADERS[args.dataset](dataset_path(args.dataset))
    tail = EMBED_TAIL.get(args.dataset)
    texts = [q[-tail:] for q in table.questions] if tail else table.questions
    trios = [args.unseen] if args.unseen else TRIOS.get(args.dataset, [])
    if args.trios is not None and not args.unseen:
        trios = [trios[i] for i in args.trios]
    unseen = trios[0] if trios else []
    n_benchmarks = len(set(table.benchmarks))
    settings = make_settings(args, trios, n_benchmarks)
    names = args.embedders.split(",") if args.embedders else [None]
    result: dict = {"dataset": args.dataset, "seeds": seeds, "settings": {}, "trios": trios,
                    "validation": bool(args.validation)}
    t0 = time.time()
    curves: dict = {}
    for i, name in enumerate(names):
        embedder = (PerSplitTuned(table, texts, args.test_size, tuned_config(args), args.validation) if name == TUNED
                    else as_embedder(name))
        run = run_embedder(table, embedder, texts, seeds, args, settings, curves if i == 0 else {})
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
                  "closed-set routers are retrained with them; AUROC/ECE/Brier are over the held-out models only; "
                  "per_model: bias = mean p_correct - accuracy on the test part, and AUROC, per held-out model",
        "onboarding": "as unseen, but the N anchors are the questions suggest_questions picks from the known models' "
                      f"history outcomes, N in {args.onboarding_n}",
        "ood": f"{ood_note(n_benchmarks)} left out of the history, drawn per seed (draws[].held_out_benchmarks); "
               "history = every question of the other benchmarks, test = every question of the left-out ones",
        "prior": "PriorRouter: at each price, the model with the best overall history accuracy among those whose "
                 "mean expected cost fits (one point per model on the history accuracy-cost frontier); "
                 "p_correct = the model's history accuracy",
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
    for name, res in result["settings"].items():
        extra = (f" (held out: {', '.join(res['unseen_models'])}; N = {res['n_anchors']}, {res['anchors']})"
                 if "n_anchors" in res else "")
        if name == "ood":
            extra = f" ({ood_note(n_benchmarks)} left out per seed)"
        print_table(f"{args.dataset} / {name}{extra} / seeds {seeds}", res)
        print_held_out(res)
        print_draws(res)
    for note in table.notes:
        print(f"  note: {note}")
    print(f"  router overhead: {result['assumptions']['router_overhead']}")
    if "length" in result:
        print_length(result["length"])
    if "embedders" in result:
        print_embedders(args.dataset, result["embedders"])
    plot(curves, out.with_suffix(".png"), args.dataset, list(SCOPE_ESTIMATORS))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
