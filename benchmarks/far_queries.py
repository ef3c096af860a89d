"""How well does a query's closeness to the history tell a kind of question the history lacks?

    PYTHONPATH=. HF_HUB_OFFLINE=1 SCOPE_DATA_DIR=../shared/data python benchmarks/far_queries.py

The default knob's margin is calibrated on questions like the history's; a query unlike them gets
the fixed margin (`scope_shared.routing.margin_calibration`). Which queries are "unlike"? Per data set
and seed, a third of the benchmarks (at least one) is left out of the history, the history is 80% of
the other benchmarks' questions, and two kinds of query are scored: the other 20% (like the history)
and the left-out benchmarks' questions (a new kind). Reported: the AUROC of telling them apart by raw
closeness (mean similarity of the 5 nearest history questions) and by `local_closeness` (that, minus
the same for those 5 neighbours), and the share of new-kind queries each flags at the threshold the
library uses (below the `FAR_SHARE` quantile of the like-the-history queries). Medians over seeds are
printed beside the means. Writes ``benchmarks/results/far_queries.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from scope_shared import History
from scope_shared.estimators.panel_features import closeness
from scope_shared.metrics import auroc
from scope_shared.routing.margin_calibration import FAR_SHARE, local_closeness

sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_margin import _data  # noqa: E402


def one(dataset: str, seed: int) -> dict:
    table, embs, _ = _data(dataset)
    benchmarks = np.array(table.benchmarks)
    names = sorted(set(benchmarks))
    rng = np.random.default_rng(seed)
    left_out = rng.choice(names, size=max(1, len(names) // 3), replace=False)
    new_kind = np.flatnonzero(np.isin(benchmarks, left_out))
    rest = rng.permutation(np.flatnonzero(~np.isin(benchmarks, left_out)))
    cut = int(0.8 * len(rest))
    history = History(embs.shape[1], "far-queries")
    history.add_questions([f"q{i}" for i in rest[:cut]], embs[rest[:cut]])
    like = rest[cut:]
    local_like, local_new = local_closeness(history, embs[like]), local_closeness(history, embs[new_kind])
    raw_like, raw_new = closeness(history, embs[like]), closeness(history, embs[new_kind])
    y = np.r_[np.zeros(len(like)), np.ones(len(new_kind))]
    return {
        "left_out": [str(b) for b in left_out],
        "auroc_raw": auroc(-np.r_[raw_like, raw_new], y),
        "auroc_local": auroc(-np.r_[local_like, local_new], y),
        "flagged_raw": float(np.mean(raw_new < np.quantile(raw_like, FAR_SHARE))),
        "flagged_local": float(np.mean(local_new < np.quantile(local_like, FAR_SHARE))),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["llmrouter-9", "routerbench-11"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "far_queries.json"))
    args = ap.parse_args(argv)
    results = {d: [one(d, s) for s in args.seeds] for d in args.datasets}
    print(f"telling left-out benchmarks from the history's own kind, seeds {args.seeds}: AUROC (mean / median), "
          f"and the share of new-kind queries below the {FAR_SHARE:g} quantile of like-the-history ones")
    for d, rows in results.items():
        def stat(key: str) -> str:
            v = [r[key] for r in rows]
            return f"{np.mean(v):.3f} / {np.median(v):.3f}"
        print(f"  {d:<16} raw closeness {stat('auroc_raw')}, local {stat('auroc_local')} "
              f"(ratio of medians {np.median([r['auroc_local'] for r in rows]) / np.median([r['auroc_raw'] for r in rows]):.2f}); "
              f"flagged: raw {stat('flagged_raw')}, local {stat('flagged_local')}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seeds": args.seeds, "far_share": FAR_SHARE, "results": results}, indent=1))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
