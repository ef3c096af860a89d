"""Tables and plots of the routing-quality benchmark (`routing_quality.py`): what it prints and draws
from its results dict, nothing measured here."""

from __future__ import annotations

from pathlib import Path

#: one colour per SCOPE estimator, in registration order (scope-knn, scope-learned, ...); baselines
#: take the colours of matplotlib's cycle that these do not use
SCOPE_COLOURS = ["darkcyan", "darkviolet", "orangered", "forestgreen", "saddlebrown", "deeppink"]
BASELINE_COLOURS = ["tab:blue", "tab:olive", "tab:gray", "tab:brown", "tab:pink", "goldenrod", "lightcoral",
                    "rosybrown"]


def _fmt(x, pct=False, digits=3) -> str:
    if x is None:
        return "-"
    return f"{x:.1%}" if pct else f"{x:.{digits}f}"


def print_table(title: str, setting: dict) -> None:
    """Every router's figures (means over seeds, ± std where it matters)."""
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
    for name, r in setting["routers"].items():
        if r.get("default_accuracy") is not None:
            print(f"  default knob, {name:<14} acc {r['default_accuracy']:.3f} ({100 * r['default_gap_to_bsm']:+.1f} pt vs BSM) "
                  f"at {100 * r['default_cost_share']:.0f}% of BSM's cost (${r['default_cost'] * 1000:.4f}/1k q)")


def print_held_out(setting: dict) -> None:
    """Per held-out model: level error (mean p_correct - true accuracy) and AUROC, means over seeds."""
    models = setting.get("unseen_models") or []
    scored = {n: r for n, r in setting["routers"].items() if "per_model" in r}
    if not models or not scored:
        return
    print("  held-out models: bias = mean p_correct - true accuracy on the test part / AUROC of p_correct")
    print(f"  {'router':<16}" + "".join(f"{m[:24]:>27}" for m in models) + f"{'mean|bias|':>12}{'AUROC/model':>12}")
    for name, r in scored.items():
        cells = "".join(f"{_fmt(r['per_model'][m]['bias'], digits=3):>17} / {_fmt(r['per_model'][m]['auroc']):>7}"
                        for m in models)
        print(f"  {name:<16}{cells}{_fmt(r['abs_bias_mean']):>12}{_fmt(r['auroc_per_model']):>12}")


def print_draws(setting: dict) -> None:
    """Per seed (for ood: per draw of left-out benchmarks): the prior, the best SCOPE router and BSM."""
    scope = [n for n, r in setting["routers"].items() if r["kind"] == "scope"]
    prior = setting["routers"].get("prior")
    if not scope:
        return
    print(f"  per seed: {'seed':>4} {'BSM acc':>8} {'prior AUC':>10} {'best SCOPE AUC':>22} {'- prior':>8} "
          f"{'its max acc':>12}  held out")
    for i, d in enumerate(setting["draws"]):
        best = max(scope, key=lambda n: setting["routers"][n]["per_seed"][i]["auc"])
        b = setting["routers"][best]["per_seed"][i]
        p_auc = prior["per_seed"][i]["auc"] if prior else None
        gap = None if p_auc is None else b["auc"] - p_auc
        print(f"            {d['seed']:>4} {d['bsm_accuracy']:>8.3f} {_fmt(p_auc):>10} {best:>14} {b['auc']:.3f} "
              f"{_fmt(gap, digits=4):>8} {b['max_accuracy']:>12.3f}  {', '.join(d.get('held_out_benchmarks', []))}")


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


def colours(names: list[str], scope_names: list[str]) -> dict[str, str]:
    """A distinct colour per router: SCOPE estimators from `SCOPE_COLOURS`, the rest from the others."""
    out = {"oracle": "black", "prior": "dimgray"}
    for i, n in enumerate(scope_names):
        out[n] = SCOPE_COLOURS[i % len(SCOPE_COLOURS)]
    rest = [n for n in names if n not in out]
    out.update({n: BASELINE_COLOURS[i % len(BASELINE_COLOURS)] for i, n in enumerate(rest)})
    return out


def plot(curves_by_setting: dict, path: Path, title: str, scope_names: list[str]) -> None:
    """One panel per setting: every router's curve on the first seed run (named in the panel title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(curves_by_setting)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 5.5 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, (setting, curves) in zip(axes.ravel(), curves_by_setting.items()):
        names = [k for k in curves if not k.startswith("_")]
        colour = colours(names, [s for s in scope_names if s in names])
        for name in names:
            pts = sorted(curves[name])
            scope = name in scope_names
            style = "-" if scope else ":" if name == "oracle" else "-." if name == "prior" else "--"
            ax.plot([c for c, _ in pts], [a for _, a in pts], style, marker=".", ms=4, label=name,
                    lw=2.5 if scope else 1.6 if name == "prior" else 1.2, color=colour[name], zorder=3 if scope else 2)
        for m, c, a in curves["_models"]:
            ax.plot(c, a, "o", color="grey", ms=5)
            ax.annotate(m, (c, a), fontsize=6, color="grey")
        ax.plot(*curves["_bsm"], "*", ms=16, color="red", label="BSM")
        ax.plot(*curves["_oracle"], "P", ms=12, color="black", label="oracle (cheapest correct)")
        ax.set_xscale("log")
        ax.set_xlabel("mean USD per query (incl. router overhead), log scale")
        ax.set_ylabel("accuracy")
        held = curves.get("_held_out_benchmarks")
        extra = f"; left out: {', '.join(held)}" if held else ""
        ax.set_title(f"{title}: {setting} (seed {curves['_seed']}{extra})", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
