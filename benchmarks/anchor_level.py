"""How well a new model's anchors measure its level: the plain anchor mean against the level corrected
for which questions the anchors are (`scope_shared.estimators.levels`).

    PYTHONPATH=. HF_HUB_OFFLINE=1 SCOPE_DATA_DIR=../shared/data nice -n 10 python benchmarks/anchor_level.py
    # per data set, without the kNN router's level (much faster):
    ... python benchmarks/anchor_level.py --datasets routerbench-11 --no-knn --draws 3 \
        --out benchmarks/results/anchor_level_onboarding_routerbench-11.json

Protocol ``onboarding`` (the default; the routing benchmark's onboarding-n50 setting): for each data
set, each held-out trio (the routing benchmark's default one and two others) and each split seed
(stratified 80/20), the trio's models keep only the N anchors `suggest_questions` picks from the
known models' outcomes on the history part (draw seed = split seed). Per held-out model it prints
the level bias (estimate - accuracy on the test part, mean over seeds) of

- ``naive``: the plain mean of its anchor outcomes (the prior router's level before the correction),
- ``corrected``: its level from `levels` (what the prior router and the estimators now use),
- ``knn``: the mean p_correct of the kNN router over the test part without and with the correction,

the corrected interval's coverage of the test accuracy (and of the history part's accuracy, its
target), and, to tell bias from the noise of one draw, the mean error over ``--draws`` more anchor
draws per split seed (with its standard error). Writes ``benchmarks/results/anchor_level_onboarding.json``.

Protocol ``leave-one-out`` (``--protocol leave-one-out``): every model held out in turn, suggested
anchors against random ones (`anchor_level.json`), as issue 11 measured them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from scope_shared.data import dataset_path, stratified_split
from scope_shared.embedders import as_embedder
from scope_shared.estimators import KNNEstimator
from scope_shared.estimators.levels import estimate_level, fit_item_bank
from scope_shared.evaluation.scope_routers import ScopeRouter
from scope_shared.evaluation.settings import Setting, setting_split
from scope_shared.onboarding import sample_anchors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from routing_quality import EMBED_TAIL, LOADERS, TRIOS, embed_texts  # noqa: E402  (the data sets' one owner)


def embeddings(ds: str, table) -> np.ndarray:
    """The bundled embedder's vectors of the table's questions, as routing_quality.py embeds them."""
    tail = EMBED_TAIL.get(ds)
    return embed_texts(as_embedder(None), [q[-tail:] for q in table.questions] if tail else list(table.questions))


def knn_level(split, level_correction: bool) -> np.ndarray:
    """Mean p_correct over the test part of the kNN router, per model."""
    router = ScopeRouter("knn", lambda history, s: KNNEstimator(level_correction=level_correction))
    router.fit(split)
    return router.route(split).p_correct.mean(0)


def onboarding_levels(ds: str, table, embs: np.ndarray, trio: list[str], seeds: list[int], n: int,
                      draws: int, with_knn: bool) -> dict:
    """Per held-out model of ``trio``: the figures of the module doc. The anchors are
    `sample_anchors` over the known models' outcomes on the history part, draw seed = split seed
    (what `setting_split` / `suggested_anchors` pick, computed on arrays); the corrected level is what
    `score_matrix_levels` gives the held-out columns (the item bank of the known models)."""
    cols = [table.models.index(m) for m in trio]
    known = [m for m in table.models if m not in trio]
    kcols = [table.models.index(m) for m in known]
    rows = {k: np.full((len(seeds), len(trio)), np.nan) for k in
            ("naive", "corrected", "knn_plain", "knn_corrected", "covers_test", "covers_history", "halfwidth")}
    extra: dict[str, list] = {k: [] for k in ("naive", "corrected")}
    for si, seed in enumerate(tqdm(seeds, desc=f"{ds} {trio[0][:20]}...", leave=False)):
        tr, te = stratified_split(table.benchmarks, 0.2, seed)
        hist, bench = table.scores[tr], [table.benchmarks[i] for i in tr]
        test_acc = np.nanmean(table.scores[te][:, cols], 0)
        hist_acc = np.nanmean(hist[:, cols], 0)
        bank = fit_item_bank(hist[:, kcols], bench)
        for d in range(draws + 1):  # draw 0: the protocol's (draw seed = split seed); then more draws
            picked, _ = sample_anchors(hist[:, kcols], bench, n, embs[tr], seed if d == 0 else 1000 + 100 * seed + d)
            for a, j in enumerate(cols):
                est = estimate_level(bank, picked, hist[picked, j])
                if d == 0:
                    rows["naive"][si, a] = est.naive - test_acc[a]
                    rows["corrected"][si, a] = est.level - test_acc[a]
                    rows["covers_test"][si, a] = est.low <= test_acc[a] <= est.high
                    rows["covers_history"][si, a] = est.low <= hist_acc[a] <= est.high
                    rows["halfwidth"][si, a] = (est.high - est.low) / 2
                else:
                    extra["naive"].append((a, est.naive - test_acc[a]))
                    extra["corrected"].append((a, est.level - test_acc[a]))
        if with_knn:
            split = setting_split(table, embs, Setting("onboarding", tuple(trio), n), seed).split
            rows["knn_plain"][si] = knn_level(split, False)[cols] - test_acc
            rows["knn_corrected"][si] = knn_level(split, True)[cols] - test_acc
    out: dict = {}
    for a, m in enumerate(trio):
        fig = {k: float(np.nanmean(v[:, a])) if np.isfinite(v[:, a]).any() else None for k, v in rows.items()}
        fig["naive_per_seed"] = rows["naive"][:, a].tolist()
        fig["corrected_per_seed"] = rows["corrected"][:, a].tolist()
        for rule, pairs in extra.items():
            e = np.array([x for b, x in pairs if b == a])
            if len(e) > 1:
                fig[f"{rule}_expected"] = float(e.mean())
                fig[f"{rule}_expected_se"] = float(e.std(ddof=1) / np.sqrt(len(e)))
                fig[f"{rule}_rmse_draws"] = float(np.sqrt(np.mean(e**2)))
        out[m] = fig
    return out


def run_onboarding(args) -> dict:
    result: dict = {"protocol": "onboarding", "seeds": list(range(args.seeds)), "n": args.n[0], "draws": args.draws,
                    "knn": not args.no_knn, "embedding_key": not (args.no_embedding_key and args.no_knn), "datasets": {}}
    for ds in args.datasets:
        table = LOADERS[ds](dataset_path(ds))
        embs = np.zeros((len(table), 1), np.float32) if args.no_embedding_key and args.no_knn else embeddings(ds, table)
        per: dict = {}
        t0 = time.perf_counter()
        for trio in TRIOS[ds]:
            per.update({m: {"trio": trio, **f} for m, f in
                        onboarding_levels(ds, table, embs, trio, result["seeds"], args.n[0], args.draws, not args.no_knn).items()})
        result["datasets"][ds] = per
        print(f"\n{ds}: onboarding with N={args.n[0]} suggested anchors, held-out trios {len(TRIOS[ds])}, "
              f"split seeds {result['seeds']}  ({time.perf_counter() - t0:.0f} s)")
        print("  level bias = estimate - accuracy on the test part, mean over seeds; cover = corrected 95% interval")
        head = (f"  {'held-out model':<34} {'naive':>7} {'corr.':>7} {'kNN':>7} {'kNN c.':>7} {'cover':>6} {'±':>5}"
                f"   {'over ' + str(args.draws) + ' draws/seed: naive':>26} {'corrected':>16}")
        print(head)
        for m, f in per.items():
            exp = ""
            if "naive_expected" in f:
                exp = (f"   {f['naive_expected']:+.3f}±{f['naive_expected_se']:.3f} (rmse {f['naive_rmse_draws']:.3f})"
                       f"  {f['corrected_expected']:+.3f}±{f['corrected_expected_se']:.3f} (rmse {f['corrected_rmse_draws']:.3f})")
            knn = "".join(f" {f[k]:+7.3f}" if f[k] is not None else f" {'-':>7}" for k in ("knn_plain", "knn_corrected"))
            print(f"  {m[:34]:<34} {f['naive']:+7.3f} {f['corrected']:+7.3f}{knn}"
                  f" {f['covers_test']:6.0%} {f['halfwidth']:5.3f}{exp}")
        within = [abs(f["corrected"]) <= 0.02 for f in per.values()]
        within_naive = [abs(f["naive"]) <= 0.02 for f in per.values()]
        print(f"  |bias| <= 0.02: corrected {sum(within)}/{len(within)} models, naive {sum(within_naive)}/{len(within_naive)}; "
              f"max |bias| corrected {max(abs(f['corrected']) for f in per.values()):.3f}, "
              f"naive {max(abs(f['naive']) for f in per.values()):.3f}; "
              f"coverage (test) {np.mean([f['covers_test'] for f in per.values()]):.0%}, "
              f"(history part) {np.mean([f['covers_history'] for f in per.values()]):.0%}")
    return result


# ---------------------------------------------------------------- issue 11's protocol
def level_errors(table, embs: np.ndarray, seeds: list[int], ns: list[int]) -> dict:
    """{rule: {N: (seeds x models) array of anchor mean - test accuracy}}."""
    m = len(table.models)
    errs = {rule: {n: np.zeros((len(seeds), m)) for n in ns} for rule in ("suggested", "random")}
    for si, seed in enumerate(tqdm(seeds, desc=table.name)):
        tr, te = stratified_split(table.benchmarks, 0.2, seed)
        hist, test = table.scores[tr], table.scores[te]
        bench = [table.benchmarks[i] for i in tr]
        for j in range(m):
            known = [k for k in range(m) if k != j]
            truth = np.nanmean(test[:, j])
            for n in ns:
                picked, _ = sample_anchors(hist[:, known], bench, n, embs[tr], seed)
                rnd = np.random.default_rng([seed, j, n]).choice(len(tr), n, replace=False)
                errs["suggested"][n][si, j] = np.nanmean(hist[picked, j]) - truth
                errs["random"][n][si, j] = np.nanmean(hist[rnd, j]) - truth
    return errs


def summary(e: np.ndarray) -> dict:
    per_model = e.mean(0)
    return {"bias": float(e.mean()), "rmse": float(np.sqrt(np.mean(e**2))),
            "per_model_mean_min": float(per_model.min()), "per_model_mean_max": float(per_model.max())}


def run_leave_one_out(args) -> dict:
    result: dict = {"seeds": list(range(args.seeds)), "n": args.n, "datasets": {}}
    for ds in args.datasets:
        table = LOADERS[ds](dataset_path(ds))
        embs = embeddings(ds, table)
        errs = level_errors(table, embs, result["seeds"], args.n)
        result["datasets"][ds] = {rule: {str(n): summary(e) for n, e in by_n.items()} for rule, by_n in errs.items()}
        print(f"\n{ds}: anchor mean - test accuracy, every model held out in turn, {args.seeds} split seeds")
        print(f"  {'N':>4}  {'rule':<10} {'bias':>8} {'per-model mean range':>24} {'RMSE':>7}  RMSE suggested/random")
        for n in args.n:
            for rule in ("suggested", "random"):
                s = result["datasets"][ds][rule][str(n)]
                ratio = ""
                if rule == "suggested":
                    ratio = f"{s['rmse'] / result['datasets'][ds]['random'][str(n)]['rmse']:.2f}"
                print(f"  {n:>4}  {rule:<10} {s['bias']:+8.4f}   [{s['per_model_mean_min']:+.3f}, "
                      f"{s['per_model_mean_max']:+.3f}] {s['rmse']:>9.4f}  {ratio}")
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--protocol", choices=["onboarding", "leave-one-out"], default="onboarding")
    ap.add_argument("--datasets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    ap.add_argument("--seeds", type=int, default=None, help="split seeds 0..S-1 (default 5; leave-one-out 10)")
    ap.add_argument("--n", type=int, nargs="+", default=None, help="anchors (default 50; leave-one-out 20 50 100 250)")
    ap.add_argument("--draws", type=int, default=20, help="onboarding: more anchor draws per split seed (0: none)")
    ap.add_argument("--no-knn", action="store_true", help="onboarding: skip the kNN router's level")
    ap.add_argument("--no-embedding-key", action="store_true",
                    help="onboarding, no kNN: draw without the sampler's last sort key (embedding direction), embedding nothing")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    onboarding = args.protocol == "onboarding"
    args.seeds = args.seeds or (5 if onboarding else 10)
    args.n = args.n or ([50] if onboarding else [20, 50, 100, 250])
    result = run_onboarding(args) if onboarding else run_leave_one_out(args)
    name = "anchor_level_onboarding.json" if onboarding else "anchor_level.json"
    out = Path(args.out or Path(__file__).resolve().parent / "results" / name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out.name}")
    return result


if __name__ == "__main__":
    main()
