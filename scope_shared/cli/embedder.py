"""``scope embedder build | train | list`` and ``scope history reembed``: the embedders by name, and moving a
history to another embedder.

Registered by `add_commands` from ``scope_shared.cli`` (one call there, so the core CLI stays small).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from scope_shared.errors import EmbedderError


def _cmd_build(args: argparse.Namespace) -> None:
    from scope_shared.embedders import build_fast
    from scope_shared.embedders.named import is_built

    if is_built() and not args.force:
        print(f"fast embedder already built: {build_fast()} (--force rebuilds it)")
        return
    t0 = time.perf_counter()
    path = build_fast(force=args.force)
    print(f"built the fast embedder in {time.perf_counter() - t0:.0f}s -> {path}")


def _cmd_train(args: argparse.Namespace) -> None:
    import sys
    from dataclasses import asdict

    from scope_shared.embedders import named
    from scope_shared.embedders.tuning import TuningConfig, save_tuned, tune_table, tuned_build
    from scope_shared.history.reembed import tuning_data

    if args.history:
        from scope_shared.history import History

        history, source = History.load(args.history), str(args.history)
    else:
        from scope_shared.onboarding.pack import load_pack

        pack = load_pack(args.pack)
        history, source = pack.history(), f"anchor pack {pack.name}"
    capped = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    config = TuningConfig(seed=args.seed, time_budget_s=args.time_budget, centre=args.centre, **capped)
    data = tuning_data(history, args.models)
    t0 = time.perf_counter()
    base = named.fast_embedder()
    table, report = tune_table(base, data, config, show_progress=sys.stderr.isatty())
    out = save_tuned(Path(args.out) if args.out else named.routing_model_dir(), table, base, report, config)
    print(json.dumps({"trained_on": source, "out": str(out), "name": (tuned_build(out) or {}).get("name"),
                      "seconds": round(time.perf_counter() - t0, 1), **asdict(report)}, indent=2))


def _cmd_list(args: argparse.Namespace) -> None:
    from scope_shared.embedders.named import (
        DESCRIPTIONS,
        FAST,
        ROUTING,
        fast_model_dir,
        fast_recorded_name,
        is_built,
        routing_model_dir,
    )
    from scope_shared.embedders.tuning import tuned_build

    for name, text in DESCRIPTIONS.items():
        state = ""
        if name == FAST:
            state = (f" [built: {fast_model_dir()}; histories record {fast_recorded_name()!r}]" if is_built()
                     else " [not built: 'scope embedder build', or built at first use]")
        if name == ROUTING:
            build = tuned_build(routing_model_dir())
            state = (f" [trained: {routing_model_dir()}; histories record {build.get('name')!r}]" if build
                     else " [not trained: 'scope embedder train']")
        print(f"{name:<8} {text}{state}")


def _cmd_reembed(args: argparse.Namespace) -> None:
    from scope_shared.embedders import as_embedder
    from scope_shared.history import History
    from scope_shared.history.reembed import reembed

    history = History.load(args.history)
    embedder = as_embedder(args.embedder)
    if history.embedder_name == embedder.name and not args.force:
        raise EmbedderError(f"history {args.history} is already embedded with {embedder.name!r} (--force redoes it)")
    t0 = time.perf_counter()
    new = reembed(history, embedder)
    out = Path(args.out or args.history)
    new.save(out)
    print(json.dumps({"questions": len(new), "from": history.embedder_name, "to": new.embedder_name,
                      "dim": new.dim, "seconds": round(time.perf_counter() - t0, 1), "out": str(out)}, indent=2))


def add_commands(sub: Any, hsub: Any) -> None:
    """Register ``embedder build | list`` on the top-level parser and ``reembed`` under ``history``."""
    emb = sub.add_parser("embedder", help="build, train or list the embedders selectable by name (minilm, fast, routing)")
    esub = emb.add_subparsers(dest="embedder_command", required=True)
    build = esub.add_parser("build", help="distil the fast embedder from the bundled MiniLM (offline, ~2 min)")
    build.add_argument("--force", action="store_true", help="rebuild even if it is built")
    build.set_defaults(func=_cmd_build)
    train = esub.add_parser("train", help="tune the fast embedder on a history's outcomes (the 'routing' embedder)")
    train.add_argument("--history", default=None, help="a saved history (default: the bundled anchor pack)")
    train.add_argument("--pack", default=None, help="an anchor pack name or folder (default: the bundled one)")
    train.add_argument("--models", nargs="+", default=None, help="only these models' outcomes (default: all)")
    train.add_argument("--out", default=None, help="folder to write (default: where the name 'routing' finds it)")
    train.add_argument("--time-budget", type=float, default=300.0, help="stop after this many seconds (best kept)")
    train.add_argument("--max-epochs", type=int, default=None, help="epoch cap (default: the training's, 20; 0: no training on outcomes)")
    train.add_argument("--centre", action="store_true", help="centre the fast table on the history's questions first")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=_cmd_train)
    lst = esub.add_parser("list", help="the embedder names and whether the fast one is built")
    lst.set_defaults(func=_cmd_list)

    re = hsub.add_parser("reembed", help="embed every history question anew with another embedder")
    re.add_argument("--history", required=True)
    re.add_argument("--embedder", required=True, help="a name (minilm, fast, routing) or a sentence-transformers path")
    re.add_argument("--out", default=None, help="write the re-embedded history here (default: in place)")
    re.add_argument("--force", action="store_true", help="re-embed even if the embedder is the same")
    re.set_defaults(func=_cmd_reembed)
