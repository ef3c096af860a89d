"""How long the default estimator takes to build: `Router(cards, history)` on the bundled pack.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/estimator_build.py

The default estimator (the panel) is fitted when the router is built, never on a routed call, and
its fits are kept in the history. Measured, as wall and process-CPU seconds (the CPU figure does not
grow when a shared machine is busy), each a median of ``--repeats`` fresh histories:
- building a router over the pack's nine models (the fit);
- building a second router over the same history (the fits are reused);
- onboarding-sized models: three models with 50 outcomes each added, then a router over them;
- the first routed call after the build (no fit in it), for comparison.
Target (issue 21): the build <= 2 s. Writes ``benchmarks/results/estimator_build.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from scope_shared import FunctionEmbedder, Router, load_pack


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "estimator_build.json"))
    args = ap.parse_args(argv)
    pack = load_pack()
    lookup = {q.text: v for q, v in zip(pack.questions, pack.embeddings)}
    embedder = FunctionEmbedder(lambda texts: np.stack([lookup[t] for t in texts]), pack.dim, name=pack.embedder_name)
    rows: dict[str, list[tuple[float, float]]] = {}
    rng = np.random.default_rng(0)
    for _ in range(args.repeats):
        history = pack.history()
        router, w, c = timed(lambda: Router(history.cards.values(), history, embedder=embedder))
        rows.setdefault("build, pack's 9 models", []).append((w, c))
        _, w, c = timed(lambda: Router(history.cards.values(), history, embedder=embedder))
        rows.setdefault("second router, same history", []).append((w, c))
        _, w, c = timed(lambda: router.route(pack.questions[0].text))
        rows.setdefault("first routed call", []).append((w, c))
        cards = []
        for i in range(3):
            ids = rng.choice(len(history), size=50, replace=False)
            history.add_outcome_arrays(ids, f"own-{i}", (rng.uniform(size=50) < 0.3 + 0.2 * i).astype(float),
                                       source="onboarding")
            cards.append({"name": f"own-{i}", "input_price": 0.1 * (i + 1), "output_price": 0.3 * (i + 1)})
        _, w, c = timed(lambda: Router(cards, history, embedder=embedder))
        rows.setdefault("router over 3 onboarded models (50 outcomes each)", []).append((w, c))
    summary = {k: {"wall_s": float(np.median([w for w, _ in v])), "cpu_s": float(np.median([c for _, c in v]))}
               for k, v in rows.items()}
    print(f"default estimator build on the bundled pack ({len(pack)} questions), median of {args.repeats}")
    for k, v in summary.items():
        print(f"  {k:<52} wall {v['wall_s']:6.2f} s   cpu {v['cpu_s']:6.2f} s")
    build = summary["build, pack's 9 models"]["cpu_s"]
    print(f"  target <= 2 s (process CPU): {'met' if build <= 2 else 'MISSED'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"repeats": args.repeats, "summary": summary, "per_repeat": rows}, indent=1))
    print(f"wrote {out}")
    return summary


if __name__ == "__main__":
    main()
