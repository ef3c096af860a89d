"""Own-models benchmark: a user's own models, onboarded and routed with the library's defaults only.

    PYTHONPATH=. HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/own_models.py

Per seed (default five), on the bundled anchor pack:
1. The pack's questions are split 80/20 (stratified by benchmark): the history part is all the user
   has (a sub-pack of it is what `onboard()` draws anchors from); the test part is what they route.
2. Three simulated models with different skill profiles (a large generalist, a specialist, a small
   cheap one) answer in each metric's real format (`ScriptedAnswerer`'s formats), right with an
   item-response probability: ``sigmoid(ability + skill[benchmark] - slope * difficulty + noise)``,
   the difficulty being how the pack's known models did on the question. Abilities, slopes, the
   specialist's field and the small model's strong suit vary by seed; none is a test stand-in.
3. Each is onboarded with ``onboard(model, card, history=h, pack=history_part)``, its defaults
   otherwise (50 suggested anchors, graded by the library's graders), then
   ``Router(cards, h)`` with its defaults routes the test questions.
4. Test truth: each model's answer to each test question, graded by the library's graders (code
   questions: what the script meant, as they run only with ``run_code=True``); cost: the card's prices
   times the answer's tokens.

Reported per seed and as means: the best own model (by test accuracy) and its cost; the default
knob's accuracy, cost and saving; the saving of the router's estimates at the best own model's accuracy
(best knob setting after the fact); the same for a router that knows the true probabilities; AUROC
and level error (mean predicted p - test accuracy) per model, and the onboarding report's level error.
Writes ``benchmarks/results/own_models.json`` and a plot of the first seed's curves.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from scope_shared import Router, load_pack, onboard
from scope_shared.data import stratified_split
from scope_shared.embedder import FunctionEmbedder
from scope_shared.estimators.shrinkage import sigmoid
from scope_shared.evaluation.metrics import cost_saving_at, lagrangian_choice
from scope_shared.evaluation.points import choice_point, curve
from scope_shared.evaluation.prediction import auroc
from scope_shared.evaluation.routers import lambda_grid
from scope_shared.onboarding import AnchorPack, AnchorQuestion, default_graders, grade_answer, render_prompt
from scope_shared.onboarding.scripted import ScriptedAnswerer
from scope_shared.tokens import approx_token_count

MATHS = ("math", "gsm8k", "agentverse-mgsm")
CODE = ("mbpp", "human_eval")
RESULTS = Path(__file__).resolve().parent / "results"


class ItemResponseModel(ScriptedAnswerer):
    """A scripted model right on question q with probability ``p_true[q.id]`` (a seeded draw per
    question), answering in the question's real format."""

    def __init__(self, name: str, p_true: np.ndarray, pack: AnchorPack, verbosity: int, seed: int) -> None:
        super().__init__(name, 0.5, pack, verbosity=verbosity, seed=seed)
        self.p_true = p_true

    def means_right(self, q: AnchorQuestion) -> bool:
        digest = hashlib.sha256(f"{self.name}:{self.seed}:{q.id}".encode()).digest()
        return int.from_bytes(digest[:8], "little") / 2**64 < self.p_true[q.id]


def difficulty(pack: AnchorPack) -> np.ndarray:
    """Each question's difficulty, standardised: minus the logit of the known models' mean score."""
    mean = np.clip(np.nanmean(pack.scores, axis=1), 0.03, 0.97)
    d = -np.log(mean / (1 - mean))
    return (d - d.mean()) / d.std()


def profiles(seed: int, benchmarks: list[str]) -> list[dict]:
    """Three skill profiles for ``seed``: names, prices, abilities and per-benchmark skills vary."""
    rng = np.random.default_rng([seed, 2026])
    others = [b for b in benchmarks if b not in MATHS + CODE]
    field = [MATHS, CODE, MATHS + CODE][seed % 3]
    suit = list(rng.choice(others, size=2, replace=False))
    return [
        {"name": "atlas-large", "price": (2.5, 7.5), "verbosity": 60, "ability": rng.uniform(0.6, 1.1),
         "slope": rng.uniform(0.9, 1.3), "skills": {}},
        {"name": "quill-specialist", "price": (0.35, 0.7), "verbosity": 30, "ability": rng.uniform(-1.2, -0.6),
         "slope": rng.uniform(0.8, 1.2), "skills": {b: rng.uniform(2.0, 3.0) for b in field}},
        {"name": "pico-small", "price": (0.06, 0.12), "verbosity": 0, "ability": rng.uniform(-1.6, -1.0),
         "slope": rng.uniform(0.6, 1.0), "skills": {b: rng.uniform(0.8, 1.5) for b in suit}},
    ]


def true_probabilities(pack: AnchorPack, prof: dict, diff: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(prof["name"].encode())])
    skill = np.array([prof["skills"].get(q.benchmark, 0.0) for q in pack.questions])
    noise = rng.normal(0.0, 0.6, len(pack.questions))
    return sigmoid(prof["ability"] + skill - prof["slope"] * diff + noise)


def sub_pack(pack: AnchorPack, ids: np.ndarray) -> AnchorPack:
    """The pack restricted to questions ``ids`` (renumbered), known models' outcomes included."""
    qs = [dataclasses.replace(pack.questions[i], id=j) for j, i in enumerate(ids)]
    tok = None if pack.output_tokens is None else np.array(pack.output_tokens[ids])
    return AnchorPack(dict(pack.manifest), qs, np.array(pack.embeddings[ids]), np.array(pack.scores[ids]), tok, pack.path)


def run_seed(pack: AnchorPack, seed: int, diff: np.ndarray, graders, dump: str | None = None) -> dict:
    hist_ids, test_ids = stratified_split([q.benchmark for q in pack.questions], 0.2, seed)
    part = sub_pack(pack, hist_ids)
    history = part.history()
    lookup = {q.text: v for q, v in zip(pack.questions, pack.embeddings)}
    embedder = FunctionEmbedder(lambda texts: np.stack([lookup[t] for t in texts]), pack.dim, name=history.embedder_name)
    profs = profiles(seed, pack.benchmarks)
    cards, p_true, truth, costs, onboarded = [], [], [], [], {}
    t0 = time.perf_counter()
    for prof in profs:
        p = true_probabilities(pack, prof, diff, seed)
        model = ItemResponseModel(prof["name"], p, pack, prof["verbosity"], seed)
        card = {"name": prof["name"], "input_price": prof["price"][0], "output_price": prof["price"][1]}
        res = onboard(model, card, history=history, pack=part, show_progress=False)
        cards.append(res.card)
        onboarded[prof["name"]] = {"anchors": res.report.graded, "anchor_accuracy": res.accuracy}
        y, c = np.empty(len(test_ids)), np.empty(len(test_ids))
        for r, i in enumerate(test_ids):
            q = pack.questions[i]
            prompt = render_prompt(q)
            answer = model.answer(prompt)
            y[r] = float(model.intended[q.id]) if q.metric not in graders else grade_answer(answer, q, graders).score
            c[r] = res.card.cost(approx_token_count(prompt), approx_token_count(answer))
        p_true.append(p[test_ids]), truth.append(y), costs.append(c)
    onboard_s = time.perf_counter() - t0
    p_true, truth, costs = np.stack(p_true, 1), np.stack(truth, 1), np.stack(costs, 1)
    t1 = time.perf_counter()
    router = Router(cards, history, embedder=embedder)
    build_s = time.perf_counter() - t1
    texts = [pack.questions[i].text for i in test_ids]
    bench = [pack.questions[i].benchmark for i in test_ids]
    names = [c.name for c in cards]
    est = router.estimate_batch(texts)
    p = np.array([[e[m].p_correct for m in names] for e in est])
    exp_cost = np.array([[e[m].expected_cost for m in names] for e in est])
    col = {m: j for j, m in enumerate(names)}
    default = np.array([col[d.model] for d in router.route_batch(texts)])
    rows = np.arange(len(texts))
    acc, mean_cost = truth.mean(0), costs.mean(0)
    best = int(np.argmax(acc))
    lambdas = lambda_grid(exp_cost.mean(0))
    router_pts = curve(truth, costs, [lagrangian_choice(p, exp_cost, lam) for lam in lambdas])
    true_pts = curve(truth, costs, [lagrangian_choice(p_true, exp_cost, lam) for lam in lambdas])
    d_pt = choice_point(truth, costs, default)
    out = {
        "seed": seed, "models": names, "profiles": [{k: (v if not isinstance(v, np.floating) else float(v))
                                                     for k, v in pr.items()} for pr in profs],
        "test_accuracy": dict(zip(names, acc.tolist())), "test_cost": dict(zip(names, mean_cost.tolist())),
        "best_model": names[best], "best_accuracy": float(acc[best]), "best_cost": float(mean_cost[best]),
        "default_knob": str(router.default_knob), "estimator": repr(router.estimator),
        "default_accuracy": d_pt.accuracy, "default_cost": d_pt.cost,
        "default_gap": d_pt.accuracy - float(acc[best]), "default_saving": 1 - d_pt.cost / float(mean_cost[best]),
        "default_share": {m: float(np.mean(default == j)) for j, m in enumerate(names)},
        "router_saving_at_best": cost_saving_at(router_pts, float(acc[best]), float(mean_cost[best])),
        "true_saving_at_best": cost_saving_at(true_pts, float(acc[best]), float(mean_cost[best])),
        "true_saving_at_default_accuracy": cost_saving_at(true_pts, d_pt.accuracy, float(mean_cost[best])),
        "auroc": {m: auroc(p[:, j], truth[:, j]) for j, m in enumerate(names)},
        "level_error": {m: float(p[:, j].mean() - acc[j]) for j, m in enumerate(names)},
        "onboarding_level_error": {m: onboarded[m]["anchor_accuracy"] - float(acc[j]) for j, m in enumerate(names)},
        "anchors": {m: onboarded[m]["anchors"] for m in names},
        "by_benchmark": {b: {"n": int(sel.sum()), **{m: (float(p[sel, j].mean()), float(truth[sel, j].mean()))
                                                    for j, m in enumerate(names)}}
                         for b in sorted(set(bench)) for sel in [np.array(bench) == b]},
        "onboard_s": onboard_s, "router_build_s": build_s,
        "curves": {"router": [(q.cost, q.accuracy) for q in router_pts], "true": [(q.cost, q.accuracy) for q in true_pts],
                   "models": [(m, float(mean_cost[j]), float(acc[j])) for j, m in enumerate(names)],
                   "default": (d_pt.cost, d_pt.accuracy)},
    }
    if dump:
        np.savez_compressed(Path(dump) / f"own_models_seed{seed}.npz", p=p, cost=exp_cost, scores=truth, costs=costs,
                            p_true=p_true)
    _ = rows
    return out


def mean(xs: list) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.mean(vals)) if vals else None


def plot(run: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cur = run["curves"]
    fig, ax = plt.subplots(figsize=(7, 5))
    for key, style, label in (("router", "-", "router (default estimator), knob swept"), ("true", "--", "router knowing the true p")):
        pts = sorted(cur[key])
        ax.plot([c for c, _ in pts], [a for _, a in pts], style, marker=".", label=label)
    for m, c, a in cur["models"]:
        ax.plot(c, a, "o", color="grey")
        ax.annotate(m, (c, a), fontsize=7, color="grey")
    ax.plot(*cur["default"], "*", ms=16, color="red", label="the defaults' one point")
    ax.set_xscale("log")
    ax.set_xlabel("mean USD per query, log scale")
    ax.set_ylabel("accuracy")
    ax.set_title(f"own models, seed {run['seed']}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default=str(RESULTS / "own_models.json"))
    ap.add_argument("--dump", default=None, help="folder: save each seed's estimates and truth (npz)")
    args = ap.parse_args(argv)
    pack = load_pack()
    diff = difficulty(pack)
    graders = default_graders()
    runs = []
    for seed in args.seeds:
        r = run_seed(pack, seed, diff, graders, args.dump)
        runs.append(r)
        print(f"seed {seed}: best {r['best_model']} acc {r['best_accuracy']:.3f} ${r['best_cost'] * 1000:.4f}/1k | "
              f"default acc {r['default_accuracy']:.3f} ({100 * r['default_gap']:+.1f} pt) saving {100 * r['default_saving']:.1f}% | "
              f"true-p saving at best acc {_pct(r['true_saving_at_best'])}, at default acc {_pct(r['true_saving_at_default_accuracy'])} | "
              f"router saving at best acc {_pct(r['router_saving_at_best'])} | build {r['router_build_s']:.2f}s",
              file=sys.stderr, flush=True)
    names = ["atlas-large", "quill-specialist", "pico-small"]
    summary = {
        "best_accuracy": mean([r["best_accuracy"] for r in runs]),
        "default_accuracy": mean([r["default_accuracy"] for r in runs]),
        "default_gap": mean([r["default_gap"] for r in runs]),
        "default_saving": mean([r["default_saving"] for r in runs]),
        "router_saving_at_best": mean([r["router_saving_at_best"] for r in runs]),
        "true_saving_at_best": mean([r["true_saving_at_best"] for r in runs]),
        "true_saving_at_default_accuracy": mean([r["true_saving_at_default_accuracy"] for r in runs]),
        "auroc": {m: mean([r["auroc"][m] for r in runs]) for m in names},
        "level_error": {m: mean([r["level_error"][m] for r in runs]) for m in names},
        "onboarding_level_error": {m: mean([r["onboarding_level_error"][m] for r in runs]) for m in names},
        "router_build_s": mean([r["router_build_s"] for r in runs]),
    }
    s = summary
    ok_acc = s["default_gap"] >= -0.01
    ok_save = s["default_saving"] >= 0.5 * (s["true_saving_at_default_accuracy"] or 0.0)
    print(f"\nown models, defaults only ({runs[0]['estimator']}, knob {runs[0]['default_knob']}), seeds {args.seeds} (means)")
    print(f"  best own model: acc {s['best_accuracy']:.3f}")
    print(f"  defaults' one point: acc {s['default_accuracy']:.3f} ({100 * s['default_gap']:+.2f} pt vs best own model; "
          f"target >= -1 pt: {'met' if ok_acc else 'MISSED'}), saving {100 * s['default_saving']:.1f}% of the best model's cost")
    print(f"  router knowing the true p: saving {_pct(s['true_saving_at_default_accuracy'])} at the defaults' accuracy, "
          f"{_pct(s['true_saving_at_best'])} at the best model's (target: defaults save >= half of the first: "
          f"{'met' if ok_save else 'MISSED'})")
    print(f"  default estimator, knob swept after the fact: saving {_pct(s['router_saving_at_best'])} at the best model's accuracy")
    print(f"  {'model':<18}{'AUROC':>8}{'level err':>11}{'onboard lvl err':>17}")
    for m in names:
        print(f"  {m:<18}{s['auroc'][m]:>8.3f}{s['level_error'][m]:>+11.3f}{s['onboarding_level_error'][m]:>+17.3f}")
    print(f"  router build (fit included): {s['router_build_s']:.2f}s mean")
    result = {"seeds": args.seeds, "summary": summary, "targets": {"accuracy": ok_acc, "saving": ok_save},
              "runs": runs, "note": "test-part costs: card prices x the answer's tokens (~4 chars a token); "
              "queries embedded by looking up the pack's stored vectors (the bundled embedder's, as the default would)"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    plot(runs[0], out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return result


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


if __name__ == "__main__":
    main()
