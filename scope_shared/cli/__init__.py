"""The ``scope`` command line: demo, route, train, onboard, pack build|info, embedder build|list, history
build|info|add-model|suggest|import|export|reembed, budget create|show."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scope_shared.errors import DataSetError, EmbedderError, EstimatorError, HistoryStoreError, NoCandidatesError, ScopeError, UnknownModelError

if TYPE_CHECKING:
    from scope_shared.history import History


def _cmd_demo(args: argparse.Namespace) -> None:
    if not 0.0 < args.test_size < 1.0:
        raise DataSetError(f"--test-size must be between 0 and 1 (a share of the questions), got {args.test_size:g}")
    if args.seed < 0:
        raise DataSetError(f"--seed must be >= 0, got {args.seed}")
    from scope_shared.cli.demo import run_demo

    run_demo(seed=args.seed, test_size=args.test_size)


def _build_history(args: argparse.Namespace) -> None:
    from scope_shared.data import load_llmrouter9, load_routing_table, stratified_split

    if args.embedder is not None:
        from scope_shared.embedders.named import expected_record

        expected_record(args.embedder)  # an unknown name fails here, not after loading the table
    embeddings = None
    if args.table:
        if not args.models:
            raise DataSetError("--table needs --models (a JSON file of prices)")
        table = load_routing_table(args.table, args.models)
    elif args.data:
        table = load_llmrouter9(args.data)
    else:  # the bundled anchor pack: llmrouter-9 with its embeddings
        from scope_shared.onboarding.pack import load_pack

        pack = load_pack()
        table = pack.to_table()
        embeddings = pack.vectors(range(len(pack))) if args.embedder is None else None
    if args.split_seed is not None:
        train_idx, _ = stratified_split(table.benchmarks, args.test_size, args.split_seed)
        table = table.subset(train_idx)
        embeddings = None if embeddings is None else embeddings[train_idx]
    history = table.to_history(args.embedder, show_progress=True, embeddings=embeddings)
    history.save(args.out)
    print(f"saved {len(history)} questions, {len(history.records)} outcomes, models {history.models} -> {args.out}")


def _cmd_info(args: argparse.Namespace) -> None:
    from scope_shared.history.shared import open_history

    print(json.dumps(open_history(args.path, args.name, follow=False).info(), indent=2))


def load_history_arg(spec: str | None, name: str = "default") -> "History":
    """``--history``: a history directory, an anchor pack (name or directory; default: the bundled
    one), or a shared history's ``postgresql://`` URL (``name``: which one)."""
    from scope_shared.history import History
    from scope_shared.postgres import is_postgres_url

    if is_postgres_url(spec):
        return History.connect(str(spec), name, follow=False)

    if spec is not None and (Path(spec) / "manifest.json").is_file():
        return History.load(spec)
    from scope_shared.onboarding.pack import MANIFEST, PACKS_DIR, load_pack

    if spec is None or (Path(spec) / MANIFEST).is_file() or (PACKS_DIR / spec / MANIFEST).is_file():
        return load_pack(spec).history()
    if (Path(spec) / "feedback.log").is_file():
        raise HistoryStoreError(
            f"{spec} holds an unfinished onboarding (its feedback log, no saved history yet): rerun the same "
            "'scope onboard ... --out' command to finish it (answers already graded are not asked again)"
        )
    return History.load(spec)  # raises the store's own clear error


KNOB_HELP = {
    "max_cost": "USD: the most accurate candidate whose expected cost fits",
    "tradeoff": "accuracy per USD, >= 0: maximise p_correct - TRADEOFF * expected cost (0 = most accurate)",
    "min_accuracy": "0..1: the cheapest candidate predicted to reach it, else the most accurate",
    "accuracy_margin": "0..1: the cheapest candidate predicted within MARGIN of the best candidate's "
                       "p_correct on this question (the default knob)",
    "alpha": "0..1: the SCOPE paper's score, 0 = cheapest, 1 = most accurate",
}


def _cmd_route(args: argparse.Namespace) -> None:
    from scope_shared.query import validate_query
    from scope_shared.routing.knobs import KNOB_KINDS, as_knob

    # everything that can be wrong with the arguments is checked before anything heavy is loaded
    question = validate_query(args.question)
    knob = as_knob({k: getattr(args, k) for k in KNOB_KINDS})
    history = load_history_arg(args.history, args.history_name)
    if not history.cards:
        raise HistoryStoreError(f"history {args.history} holds no model cards; build it with 'scope history build'")
    cards = history.cards
    if args.candidates is not None:
        names = [c.strip() for c in args.candidates.split(",") if c.strip()]
        if not names:
            raise NoCandidatesError(f"--candidates names no model; the history has cards for {', '.join(cards)}")
        unknown = [m for m in names if m not in cards]
        if unknown:
            raise UnknownModelError(f"unknown candidate {unknown[0]!r}; the history has cards for {', '.join(cards)}")
        cards = {m: cards[m] for m in names}
    check_embedder_arg(history, args.embedder, args.history)
    estimator = None
    if args.estimator:
        from scope_shared.cli.learned import load_estimator

        estimator = load_estimator(args.estimator)
    from scope_shared.routing.router import Router

    router = Router(cards.values(), history, estimator=estimator, embedder=args.embedder)
    decision = router.route(question, knob=knob)
    print(f"{'model':<36} {'p_correct':>9} {'out tokens':>10} {'(from)':<8} {'expected $':>12}")
    for m in decision.ranking:
        e = decision.estimates[m]
        print(f"{m:<36} {e.p_correct:9.3f} {e.expected_output_tokens:10.0f} {e.output_tokens_source:<8} {e.expected_cost:12.7f}")
    print(f"decision: {decision.explanation}")
    sources = {e.output_tokens_source for e in decision.estimates.values()}
    if sources - {"history"}:
        print("note: output tokens 'prior' = the card's per-benchmark length prior, 'assumed' = one default "
              "length; 'history' = counted on similar questions. Input tokens: "
              + ("characters / 4." if decision.chosen.input_tokens_approximated else "counted."))


def check_embedder_arg(history: "History", spec: str | None, history_arg: str | None) -> None:
    """Refuse ``--embedder`` when it cannot serve ``history`` (another embedder's vectors), before the
    embedder is loaded or distilled, naming the command that makes a matching history."""
    if spec is None:
        return
    from scope_shared.embedders.named import expected_record

    name, dim = expected_record(spec)
    recorded = history.embedder_name
    if (recorded is None or recorded == name) and (dim is None or dim == history.dim):
        return
    where = history_arg or "the bundled pack"
    if history_arg is None or not (Path(history_arg) / "manifest.json").is_file():
        fix = f"'scope history build --embedder {spec} --out DIR' makes one from the bundled pack"
    else:
        fix = f"'scope history reembed --history {history_arg} --embedder {spec} --out DIR' makes one"
    raise EmbedderError(
        f"--embedder {spec} cannot serve {where}: its questions were embedded with "
        f"{recorded or f'a {history.dim}-d embedder'!s}"
        f"{'' if dim is None else f' ({history.dim}-d; {spec} gives {dim}-d vectors)'}; "
        f"route with a history embedded by {spec}: {fix}, then pass --history DIR"
    )


def _cmd_train_reasoner(args: argparse.Namespace) -> None:
    from scope_shared.estimators.reasoning.training import train_reasoner

    try:
        config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EstimatorError(f"cannot read config {args.config}: {exc}") from None
    if not isinstance(config, dict):
        raise EstimatorError(f"config {args.config} must hold a JSON object")
    print(json.dumps(train_reasoner(config), indent=2, default=str))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scope", description="SCOPE router: pre-hoc model routing",
        epilog="Progress bars are drawn only on a terminal; --quiet (anywhere) or SCOPE_QUIET=1 turns them off.")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars (same as SCOPE_QUIET=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="route llmrouter-9's held-out questions and print the savings")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--test-size", type=float, default=0.2)
    demo.set_defaults(func=_cmd_demo)

    route = sub.add_parser(
        "route", help="print every candidate's estimate and the decision",
        description="Estimate every candidate's chance of answering QUESTION correctly and its cost, and pick one "
                    "under one knob. Arguments are checked before the embedder loads.")
    route.add_argument("question")
    route.add_argument("--history", default=None, help="a history directory (scope history build / scope onboard), an anchor pack (default: the bundled pack) or a postgresql:// URL")
    route.add_argument("--candidates", default=None, help="comma-separated model names to route among (default: every card in the history)")
    route.add_argument("--history-name", default="default", help="the shared history's name, with a URL")
    route.add_argument("--embedder", default=None,
                       help="minilm, fast or a sentence-transformers path (default: the one the history records)")
    route.add_argument("--estimator", default=None, help="a trained estimator directory (scope train); default kNN")
    from scope_shared.routing.knobs import DEFAULT_ACCURACY_MARGIN, KNOB_KINDS  # here: `scope --help` stays fast

    knobs = route.add_argument_group(
        f"knob (set at most one; none: the router's default, a margin calibrated on the history, else "
        f"--accuracy-margin {DEFAULT_ACCURACY_MARGIN:g})",
        "how to trade accuracy for cost on this question").add_mutually_exclusive_group()
    for knob in KNOB_KINDS:
        knobs.add_argument(f"--{knob.replace('_', '-')}", dest=knob, type=float, default=None,
                           metavar=knob.split("_")[-1].upper(), help=KNOB_HELP[knob])
    route.set_defaults(func=_cmd_route)

    hist = sub.add_parser("history", help="build or inspect a history store")
    hsub = hist.add_subparsers(dest="history_command", required=True)
    build = hsub.add_parser("build", help="embed a routing table into a history directory")
    build.add_argument("--out", required=True)
    build.add_argument("--data", default=None, help="an llmrouter-9 folder (default: the anchor pack in the package)")
    build.add_argument("--table", default=None, help="your own routing table (.jsonl/.csv/.parquet)")
    build.add_argument("--models", default=None, help="JSON prices for --table")
    build.add_argument("--split-seed", type=int, default=None, help="keep only the history part of a split")
    build.add_argument("--test-size", type=float, default=0.2)
    build.add_argument("--embedder", default=None,
                       help="minilm (default: the pack's stored vectors), fast (distilled once, then ~1 s for the "
                            "pack; 'scope route --history OUT' then starts without torch), or a sentence-transformers folder")
    build.set_defaults(func=_build_history)
    info = hsub.add_parser("info", help="describe a history directory or a shared history")
    info.add_argument("path", help="a history directory or a postgresql:// URL")
    info.add_argument("--name", default="default", help="the shared history's name, with a URL")
    info.set_defaults(func=_cmd_info)

    train = sub.add_parser("train-reasoner", help="fine-tune the reasoning predictor (SFT, then GRPO; needs [train])")
    train.add_argument("--config", required=True, help="JSON config (see scope_shared.estimators.reasoning.training.train_reasoner)")
    train.set_defaults(func=_cmd_train_reasoner)
    from scope_shared.cli.learned import add_commands
    from scope_shared.cli.onboard import add_commands as add_onboarding_commands

    add_commands(sub, hsub)  # scope train, scope history add-model | suggest
    add_onboarding_commands(sub)  # scope onboard, scope pack build | info
    from scope_shared.cli.fleet import add_commands as add_fleet_commands

    add_fleet_commands(sub, hsub)  # scope history import | export, scope budget create | show
    from scope_shared.cli.embedder import add_commands as add_embedder_commands

    add_embedder_commands(sub, hsub)  # scope embedder build | list, scope history reembed
    return parser


def main(argv: list[str] | None = None) -> int:
    from scope_shared.progress import set_quiet

    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)
    if "--quiet" in argv[:end] or "-q" in argv[:end]:  # accepted before or after the command
        argv = [a for i, a in enumerate(argv) if i >= end or a not in ("--quiet", "-q")]
        set_quiet()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ScopeError as exc:
        print(f"scope: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
