"""A user's own models, onboarded and routed with the library's defaults only: does the router save?

The promise a new user tries first: onboard a few of *their own* models with `onboard()` (its
default anchors), build `Router([...], history)` with no other argument, and route. This benchmark
plays that user on the bundled pack (llmrouter-9, MIT), on every seed:

1. The pack's questions are split by benchmark (`stratified_split`, 20 % held out, seeded). The
   history is the pack's history part (questions, the known models' outcomes); the held-out part is
   never seen by onboarding or the router. Code questions are left out of the test part: onboarding
   with the defaults does not run code (``run_code`` is opt-in), so they could not be graded.
2. Four simulated own models with different skill profiles answer: a strong generalist (expensive),
   a mid generalist, a maths specialist (strong on gsm8k, math and mgsm only, mid-priced) and a weak
   cheap one. Whether a model is right on a question is drawn from an item-response world: its
   chance is ``sigmoid(level[model, benchmark] + slope[model] * ease[q] + noise[model, q])``, where
   ``ease[q]`` is the logit of the known models' mean accuracy on ``q`` (real questions are hard or
   easy for every model alike). The profiles (levels per benchmark, slopes, prices, verbosity) are
   drawn anew on every seed. Each answer is written in the question's real format (a letter, "####
   42", ``\\boxed{}``, a sentence, ...) and graded by the library's graders; its token usage is
   counted from the text. These models differ from the flat-rate stand-ins of the tests.
3. Each model is onboarded with ``onboard(model, card, history=history)`` (defaults), then a
   ``Router(cards, history)`` (defaults: estimator, embedder, knob) routes the held-out questions.

Figures (means over seeds, with the per-seed values in the JSON):
- the best own model (most accurate on the test part) and its cost; the default router's accuracy
  and cost, as a share of the best model's;
- saving at the best own model's accuracy along the router's tradeoff sweep (its estimates, the
  library's curve figures), and that of a router that knows the true probabilities (and the true
  expected cost): the ceiling;
- per model: AUROC of ``p_correct`` on the test part, and the level error (mean predicted minus
  realised accuracy);
- the anchor-limited yardstick (`anchor_limited_p`): a router that knows the world's structure but
  learns each model's level per benchmark from the same anchors, reading a question's ease from its
  text. The true-probability router knows every question's ease and every model's level exactly, which
  no router can learn from 50 anchors; this yardstick shows what those anchors allow.

Targets (issue 21): default accuracy >= best own model's - 1 point; saving >= half the
true-probability router's saving at that accuracy.

Run:  PYTHONPATH=$PWD python benchmarks/own_models.py --seeds 0 1 2 3 4
Writes benchmarks/results/own_models.json and own_models.png.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared import Router, load_pack, onboard
from scope_shared.data import stratified_split
from scope_shared.evaluation import choice_point, cost_saving_at, curve, lagrangian_choice
from scope_shared.estimators.logistic import logit, sigmoid
from scope_shared.evaluation.routers import sweep
from scope_shared.metrics import auroc
from scope_shared.onboarding.graders import default_graders, grade_answer
from scope_shared.onboarding.pack import AnchorPack
from scope_shared.onboarding.questions import AnchorQuestion, render_prompt
from scope_shared.onboarding.scripted import ScriptedAnswerer

OUT = Path(__file__).parent / "results"
MATHS = ("gsm8k", "math", "agentverse-mgsm")
LAMBDAS = np.concatenate([[0.0], np.logspace(0, 7, 90)])
#: spread of the per-question noise of the item-response world (logits)
NOISE = 0.6


@dataclass(frozen=True)
class Profile:
    """One simulated model: its logit level per benchmark, slope on question ease, price, verbosity."""

    name: str
    levels: dict[str, float]
    slope: float
    input_price: float
    output_price: float
    verbosity: int

    def card(self) -> dict[str, Any]:
        return {"name": self.name, "input_price": self.input_price, "output_price": self.output_price}


def draw_profiles(benchmarks: list[str], rng: np.random.Generator) -> list[Profile]:
    """Four models whose skills and prices vary with the seed (see the module doc)."""
    def levels(base: float, spread: float, boost: dict[str, float] | None = None) -> dict[str, float]:
        out = {b: base + spread * rng.normal() for b in benchmarks}
        for b, v in (boost or {}).items():
            out[b] = v + 0.3 * rng.normal()
        return out

    strong = Profile("own-strong", levels(rng.uniform(1.0, 1.6), 0.35), rng.uniform(0.9, 1.3),
                     rng.uniform(2.0, 4.0), rng.uniform(8.0, 15.0), int(rng.integers(60, 160)))
    mid = Profile("own-mid", levels(rng.uniform(0.0, 0.5), 0.45), rng.uniform(0.8, 1.2),
                  rng.uniform(0.4, 0.9), rng.uniform(1.2, 3.0), int(rng.integers(30, 90)))
    maths = Profile("own-maths", levels(rng.uniform(-1.2, -0.6), 0.3, {b: rng.uniform(1.4, 2.2) for b in MATHS}),
                    rng.uniform(0.8, 1.2), rng.uniform(0.3, 0.7), rng.uniform(0.9, 2.0), int(rng.integers(40, 120)))
    weak = Profile("own-weak", levels(rng.uniform(-1.3, -0.7), 0.4), rng.uniform(0.7, 1.1),
                   rng.uniform(0.03, 0.08), rng.uniform(0.08, 0.25), int(rng.integers(0, 20)))
    return [strong, mid, maths, weak]


def question_ease(pack: AnchorPack) -> np.ndarray:
    """Logit of the known models' mean accuracy on each question (smoothed: never infinite)."""
    known = np.isfinite(pack.scores)
    right = np.where(known, pack.scores, 0.0).sum(1)
    p = (right + 0.5) / (known.sum(1) + 1.0)
    return np.log(p / (1 - p))


def anchor_limited_p(profile: Profile, anchor_bench: list[str], anchor_right: np.ndarray, anchor_ease: np.ndarray,
                     bench: np.ndarray, ease_hat: np.ndarray) -> np.ndarray:
    """What a router could know from the same anchors if it knew the world's structure: a yardstick.

    It knows the model's slope, the noise, the spread of its levels over benchmarks and its mean level,
    and each anchor's ease; it learns the level on each benchmark from the anchors there (a posterior on
    a grid, prior N(mean level, spread of the levels)), and reads a test question's ease from the text
    (``ease_hat``: from the known models' estimates, as any router must). Its estimate is the posterior
    mean chance of being right. No estimator can beat it on average with these anchors.
    """
    grid = np.linspace(-6.0, 6.0, 241)
    scale = 1.0 / np.sqrt(1.0 + np.pi * NOISE**2 / 8.0)  # the noise integrated out (probit approximation)
    levels = np.array(list(profile.levels.values()))
    log_prior = -0.5 * ((grid - levels.mean()) / max(levels.std(), 0.1)) ** 2
    anchor_bench = np.asarray(anchor_bench, dtype=object)
    out = np.zeros(len(bench))
    for b in np.unique(bench):
        at = anchor_bench == b
        chance = sigmoid(scale * (grid[:, None] + profile.slope * anchor_ease[at][None, :]))
        log_post = log_prior + np.where(anchor_right[at][None, :], np.log(chance), np.log1p(-chance)).sum(1)
        w = np.exp(log_post - log_post.max())
        w /= w.sum()
        rows = bench == b
        out[rows] = w @ sigmoid(scale * (grid[:, None] + profile.slope * ease_hat[rows][None, :]))
    return out


class SimulatedModel(ScriptedAnswerer):
    """A plain-callable model of the item-response world: right where its draw says, in real formats."""

    def __init__(self, profile: Profile, pack: AnchorPack, truth: np.ndarray) -> None:
        super().__init__(profile.name, pack=pack, verbosity=profile.verbosity)
        self.truth = truth  # (n_questions,) bool: right or not, drawn once

    def means_right(self, q: AnchorQuestion) -> bool:
        return bool(self.truth[q.id])


def run_seed(seed: int, pack: AnchorPack, ease: np.ndarray, n_anchors: int | None = None) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 21])
    benchmarks = sorted(set(pack.benchmarks))
    profiles = draw_profiles(benchmarks, rng)
    bench = np.array(pack.benchmarks)
    p_true = np.stack([
        1 / (1 + np.exp(-(np.array([pr.levels[b] for b in bench]) + pr.slope * ease + rng.normal(0, NOISE, len(ease)))))
        for pr in profiles
    ], axis=1)  # (n_questions, n_models)
    right = rng.random(p_true.shape) < p_true
    models = [SimulatedModel(pr, pack, right[:, j]) for j, pr in enumerate(profiles)]

    train_ids, test_ids = stratified_split(pack.benchmarks, test_size=0.2, seed=seed)
    test_ids = np.array([i for i in test_ids if pack.questions[i].metric != "code"])
    history = pack.history(question_ids=train_ids)  # a user's history: the pack's history part, known models included

    t0 = time.perf_counter()
    cards = []
    for model, pr in zip(models, profiles):
        more = {} if n_anchors is None else {"n_anchors": n_anchors}  # None: onboard()'s default
        result = onboard(model, pr.card(), history=history, show_progress=False, **more)
        cards.append(result.card)
    onboard_s = time.perf_counter() - t0
    known_cards = [pack.cards[m] for m in pack.models]

    t0 = time.perf_counter()
    router = Router(cards, history)
    build_s = time.perf_counter() - t0
    questions = [pack.questions[i] for i in test_ids]
    texts = [q.text for q in questions]

    # every own model answers every test question (its real format), graded by the library's graders
    graders = default_graders()
    scores = np.zeros((len(questions), len(models)))
    costs = np.zeros_like(scores)
    for j, (model, pr) in enumerate(zip(models, profiles)):
        for i, q in enumerate(questions):
            prompt = render_prompt(q)
            reply = model(prompt)
            scores[i, j] = grade_answer(reply["text"], q, graders).score
            costs[i, j] = (reply["input_tokens"] * pr.input_price + reply["output_tokens"] * pr.output_price) / 1e6

    t0 = time.perf_counter()
    decisions = router.route_batch(texts)
    route_s = time.perf_counter() - t0
    names = [c.name for c in cards]
    col = {n: j for j, n in enumerate(names)}
    p_est = np.array([[d.estimates[n].p_correct for n in names] for d in decisions])
    c_est = np.array([[d.estimates[n].expected_cost for n in names] for d in decisions])
    chosen = np.array([col[d.model] for d in decisions])

    # the anchor-limited yardstick: the same anchors, the world's structure known, a question's ease read
    # from the text through the known models' estimates (a router over them, the library's defaults)
    known = Router(known_cards, history).route_batch(texts)
    ease_hat = logit(np.array([[d.estimates[c.name].p_correct for c in known_cards] for d in known]).mean(1), 1e-4)
    pack_id = {q.text: i for i, q in enumerate(pack.questions)}
    p_anchor = np.zeros_like(p_est)
    for j, (n, pr) in enumerate(zip(names, profiles)):
        arr = history.model_arrays(n)
        ids = [pack_id[history.text(int(q))] for q in arr.ids]
        p_anchor[:, j] = anchor_limited_p(pr, [pack.benchmarks[i] for i in ids], arr.scores > 0.5, ease[ids],
                                          np.array([pack.benchmarks[i] for i in test_ids]), ease_hat)

    acc = scores.mean(0)
    best = int(np.argmax(acc))
    best_acc, best_cost = float(acc[best]), float(costs[:, best].mean())
    default = choice_point(scores, costs, chosen)
    router_points = curve(scores, costs, sweep(p_est, c_est, LAMBDAS)) + [default]
    # the ceiling: a router that knows each model's true chance on each question and its real cost
    oracle_p_points = curve(scores, costs, [lagrangian_choice(p_true[test_ids], costs, lam) for lam in LAMBDAS])
    anchor_points = curve(scores, costs, [lagrangian_choice(p_anchor, c_est, lam) for lam in LAMBDAS])
    saving_router = cost_saving_at(router_points, best_acc, best_cost)
    saving_true = cost_saving_at(oracle_p_points, best_acc, best_cost)
    saving_anchor = cost_saving_at(anchor_points, best_acc, best_cost)
    per_model = {}
    for j, n in enumerate(names):
        per_model[n] = {
            "test_accuracy": float(acc[j]),
            "mean_cost": float(costs[:, j].mean()),
            "auroc": auroc(p_est[:, j], scores[:, j]),
            "anchor_limited_auroc": auroc(p_anchor[:, j], scores[:, j]),
            "level_error": float(p_est[:, j].mean() - acc[j]),
            "share_routed": float((chosen == j).mean()),
        }
    return {
        "seed": seed,
        "n_anchors": n_anchors,
        "n_test": len(questions),
        "profiles": [pr.__dict__ for pr in profiles],
        "best_model": names[best],
        "best_accuracy": best_acc,
        "best_cost": best_cost,
        "default_accuracy": default.accuracy,
        "default_cost": default.cost,
        "default_cost_share": default.cost / best_cost,
        "default_accuracy_gap_points": 100 * (default.accuracy - best_acc),
        "default_knob": router.default_knob.as_dict(),
        "default_knob_reason": router.default_knob_reason,
        "estimator": decisions[0].estimates[names[0]].estimator,
        "saving_at_best": saving_router,
        "true_p_saving_at_best": saving_true,
        "anchor_limited_saving_at_best": saving_anchor,
        "per_model": per_model,
        "seconds": {"onboarding": onboard_s, "router_build": build_s, "routing": route_s},
        "curves": {
            "router": [[p.cost, p.accuracy] for p in router_points],
            "true_p": [[p.cost, p.accuracy] for p in oracle_p_points],
            "anchor_limited": [[p.cost, p.accuracy] for p in anchor_points],
            "models": [[float(costs[:, j].mean()), float(acc[j])] for j in range(len(names))],
            "default": [default.cost, default.accuracy],
        },
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        vals = [r[key] for r in runs if r[key] is not None]
        return float(np.mean(vals)) if vals else None

    saving = [r["saving_at_best"] or 0.0 for r in runs]
    ceiling = [r["true_p_saving_at_best"] or 0.0 for r in runs]
    anchor_limited = [r["anchor_limited_saving_at_best"] or 0.0 for r in runs]
    out = {
        "seeds": [r["seed"] for r in runs],
        "default_accuracy_gap_points": mean("default_accuracy_gap_points"),
        "default_cost_share": mean("default_cost_share"),
        "default_saving": 1 - mean("default_cost_share"),
        "saving_at_best": float(np.mean(saving)),
        "true_p_saving_at_best": float(np.mean(ceiling)),
        "anchor_limited_saving_at_best": float(np.mean(anchor_limited)),
        "saving_ratio_to_true_p": float(np.mean(saving) / np.mean(ceiling)) if np.mean(ceiling) > 0 else None,
        "auroc": {n: float(np.mean([r["per_model"][n]["auroc"] for r in runs])) for n in runs[0]["per_model"]},
        "anchor_limited_auroc": {n: float(np.mean([r["per_model"][n]["anchor_limited_auroc"] for r in runs]))
                                 for n in runs[0]["per_model"]},
        "level_error": {n: float(np.mean([r["per_model"][n]["level_error"] for r in runs])) for n in runs[0]["per_model"]},
        "seconds_router_build_median": float(np.median([r["seconds"]["router_build"] for r in runs])),
    }
    gap, ratio = out["default_accuracy_gap_points"], out["saving_ratio_to_true_p"]
    default_saving_ratio = out["default_saving"] / out["true_p_saving_at_best"] if out["true_p_saving_at_best"] > 0 else None
    out["default_saving_ratio_to_true_p"] = default_saving_ratio
    out["targets"] = {
        "default accuracy >= best own model - 1 point": gap is not None and gap >= -1.0,
        "default saving >= half the true-probability router's saving": (
            default_saving_ratio is not None and gap is not None and gap >= -1.0 and default_saving_ratio >= 0.5
        ),
        "sweep saving at best accuracy >= half the true-probability router's": ratio is not None and ratio >= 0.5,
    }
    return out


def report(runs: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    n = runs[0].get("n_anchors")
    lines = [f"own models, {'defaults only' if n is None else f'{n} anchors, other defaults'} (estimator {runs[0]['estimator']}), "
             f"{len(runs)} seed(s), ~{runs[0]['n_test']} held-out questions each"]
    lines.append(f"{'seed':>4} {'default knob':>21} {'best model':>11} {'best acc':>8} {'default acc':>11} {'gap pts':>7} "
                 f"{'cost/best':>9} {'saving@best':>11} {'true-p saving':>13} {'anchor-limited':>14}")
    for r in runs:
        sv = "n/a" if r["saving_at_best"] is None else f"{100 * r['saving_at_best']:.1f}%"
        tp = "n/a" if r["true_p_saving_at_best"] is None else f"{100 * r['true_p_saving_at_best']:.1f}%"
        al = "n/a" if r["anchor_limited_saving_at_best"] is None else f"{100 * r['anchor_limited_saving_at_best']:.1f}%"
        knob = ", ".join(f"{k}={v:g}" for k, v in r["default_knob"].items())
        lines.append(f"{r['seed']:>4} {knob:>21} {r['best_model']:>11} {r['best_accuracy']:8.3f} {r['default_accuracy']:11.3f} "
                     f"{r['default_accuracy_gap_points']:7.2f} {r['default_cost_share']:9.2f} {sv:>11} {tp:>13} {al:>14}")
    s = summary
    lines.append(f"mean: default accuracy gap {s['default_accuracy_gap_points']:+.2f} points, default cost "
                 f"{100 * s['default_cost_share']:.0f}% of the best model's (saving {100 * s['default_saving']:.1f}%); "
                 f"sweep saving at best accuracy {100 * s['saving_at_best']:.1f}% vs true-probability "
                 f"{100 * s['true_p_saving_at_best']:.1f}% (ratio {s['saving_ratio_to_true_p'] if s['saving_ratio_to_true_p'] is None else round(s['saving_ratio_to_true_p'], 2)})")
    lines.append(f"the anchor-limited yardstick (the same anchors, the world's structure known) saves "
                 f"{100 * s['anchor_limited_saving_at_best']:.1f}% at best accuracy: ratio "
                 f"{s['anchor_limited_saving_at_best'] / s['true_p_saving_at_best']:.2f} of the true-probability router's")
    lines.append("per model (mean over seeds): " + ", ".join(
        f"{n}: AUROC {s['auroc'][n]:.3f} (yardstick {s['anchor_limited_auroc'][n]:.3f}), level error {s['level_error'][n]:+.3f}" for n in s["auroc"]))
    lines.append(f"router build (median): {s['seconds_router_build_median']:.2f} s")
    for target, ok in s["targets"].items():
        lines.append(f"  {'MET ' if ok else 'MISS'} {target}")
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), squeeze=False)
    for ax, r in zip(axes[0], runs):
        for key, style in (("router", "-"), ("true_p", ":"), ("anchor_limited", "--")):
            pts = sorted(r["curves"][key])
            xs, ys, best = [], [], -1.0
            for c, a in pts:
                if a > best:
                    xs.append(c * 1e6)
                    ys.append(a)
                    best = a
            ax.step(xs, ys, style, where="post", label={"router": "router sweep", "true_p": "true p", "anchor_limited": "anchor-limited"}[key])
        for (c, a), n in zip(r["curves"]["models"], r["per_model"]):
            ax.scatter([c * 1e6], [a], marker="s")
            ax.annotate(n.replace("own-", ""), (c * 1e6, a), fontsize=7)
        c, a = r["curves"]["default"]
        ax.scatter([c * 1e6], [a], marker="*", s=120, color="k", label="default")
        ax.set_xscale("log")
        ax.set(title=f"seed {r['seed']}", xlabel="mean cost per query (micro-USD)", ylabel="accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--n-anchors", type=int, default=None,
                    help="anchors per own model (default: onboard()'s default; more anchors, sharper estimates)")
    ap.add_argument("--out", default=str(OUT / "own_models"))
    args = ap.parse_args()
    pack = load_pack()
    ease = question_ease(pack)
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(seed, pack, ease, args.n_anchors))
        print(report(runs[-1:], summarize(runs[-1:])).splitlines()[2], flush=True)
    summary = summarize(runs)
    text = report(runs, summary)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))
    out.with_suffix(".txt").write_text(text + "\n")
    plot(runs, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
