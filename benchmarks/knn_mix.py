"""The panel estimator mixed with the plain kNN estimate: how much of it routes best? (validation parts only)

    PYTHONPATH=. HF_HUB_OFFLINE=1 SCOPE_DATA_DIR=../shared/data nice -n 10 python benchmarks/knn_mix.py

The panel estimator's last step mixes its estimate with the model's own kNN estimate on its level,
``(1 - w) * panel + w * knn`` (`PanelEstimator(knn_weight=w)`). This benchmark chooses ``w`` the way
defaults are chosen here: `routing_quality.py --validation` (each seed's history part split again,
its test part never read), both data sets, settings seen, unseen and onboarding-n50 with every
held-out trio, 5 seeds, one router per weight. It prints each setting's routing AUC per weight, its
difference to the pure panel (w = 0, the baseline measured in the same run) and the mean over settings,
and writes ``benchmarks/results/knn_mix.json`` (the per-data-set runs beside it as
``knn_mix_<data set>.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from scope_shared.estimators import PanelEstimator
from scope_shared.evaluation.scope_routers import register_estimator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing_quality  # noqa: E402

OUT = Path(__file__).parent / "results"
DATASETS = ("llmrouter-9", "routerbench-11")
WEIGHTS = (0.0, 0.25)  # the pure panel and the library's weight; each weight is one more router per run


def router_name(weight: float) -> str:
    return f"scope-panel-knn{weight:g}"


# at import, not in main(): routing_quality's worker processes are spawned and import this module anew
for _w in WEIGHTS:
    register_estimator(router_name(_w), lambda history, split, w=_w: PanelEstimator(seed=split.seed, knn_weight=w))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    labels = [f"{w:g}" for w in WEIGHTS]  # the JSON's keys; "0" is the pure panel, the baseline
    table: dict[str, dict[str, float]] = {}
    for dataset in DATASETS:
        out = OUT / f"knn_mix_{dataset}.json"
        routing_quality.main(["--dataset", dataset, "--validation", "--settings", "seen", "unseen", "onboarding",
                              "--onboarding-n", "50", "--jobs", str(args.jobs), "--out", str(out),
                              "--seeds", *map(str, args.seeds), "--routers", *map(router_name, WEIGHTS)])
        for setting, body in json.loads(out.read_text())["settings"].items():
            table[f"{dataset} {setting}"] = {k: body["routers"][router_name(w)]["auc"] for k, w in zip(labels, WEIGHTS)}
    lines = [f"routing AUC on the validation parts ({len(args.seeds)} seeds) by knn_weight; in brackets, points "
             "against the pure panel (w = 0) of the same run"]
    lines.append(f"{'setting':36s}" + "".join(f"{'w=' + k:>16s}" for k in labels))
    for row, aucs in table.items():
        lines.append(f"{row:36s}" + "".join(f"{aucs[k]:8.4f} ({100 * (aucs[k] - aucs['0']):+5.2f})" for k in labels))
    mean = {k: float(np.mean([100 * (a[k] - a["0"]) for a in table.values()])) for k in labels}
    lines.append(f"{'mean difference (points)':36s}" + "".join(f"{mean[k]:+16.2f}" for k in labels))
    up = {k: sum(a[k] > a["0"] for a in table.values()) for k in labels}
    lines.append(f"{'settings above w = 0':36s}" + "".join(f"{up[k]:>13d}/{len(table):<2d}" for k in labels))
    text = "\n".join(lines)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "knn_mix.json").write_text(json.dumps({"auc": table, "mean_difference_points": mean, "settings_up": up,
                                                  "library_weight": PanelEstimator().knn_weight}, indent=1))
    (OUT / "knn_mix.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
