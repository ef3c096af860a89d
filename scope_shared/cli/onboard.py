"""``scope onboard``: onboard a model in one command; ``scope pack build|info``: anchor packs.

    scope onboard --model openai:gpt-4o-mini --input-price 0.15 --output-price 0.6 --max-spend 0.5 --out my-history
    scope route "..." --history my-history --candidates gpt-4o-mini,other-model

The grown history (the pack's questions and known models plus the new one) is saved to ``--out``
(or back to ``--history``; an ``--out`` that already holds a history is grown, so one folder
collects every model you onboard); every graded answer is first appended to
``<out>/feedback.log``, so the same command after a crash or a spend cap carries on where it
stopped.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

from scope_shared.errors import DataSetError, OnboardingError

LOG_NAME = "feedback.log"


def load_object(spec: str) -> Any:
    """``module:attr`` -> that object; a zero-argument callable (a factory) is called."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise OnboardingError(f"--model-object must read 'module:attribute', got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise OnboardingError(f"cannot load {spec!r}: {exc}") from None
    if callable(obj) and not hasattr(obj, "invoke") and not hasattr(obj, "chat"):
        try:
            required = [p for p in inspect.signature(obj).parameters.values()
                        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            required = [None]
        if not required:
            obj = obj()
    return obj


def _card(args: argparse.Namespace) -> dict[str, Any]:
    if args.card:
        try:
            card = json.loads(Path(args.card).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OnboardingError(f"cannot read card {args.card}: {exc}") from None
        if not isinstance(card, dict):
            raise OnboardingError(f"card {args.card} must hold a JSON object")
        return card
    if args.input_price is None or args.output_price is None:
        raise OnboardingError("give the model's prices: --card card.json, or --input-price and --output-price (USD per 1M tokens)")
    name = args.name or (args.model.split(":", 1)[1] if args.model and ":" in args.model else None)
    if not name:
        raise OnboardingError("give the model a name: --name NAME (or --card)")
    return {"name": name, "input_price": args.input_price, "output_price": args.output_price}


def _anchor_questions(path: str) -> list[int | str]:
    """``--anchor-questions FILE``: one pack question a line, by id (a number) or by its text (a
    question of one line)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise OnboardingError(f"cannot read --anchor-questions {path}: {exc}") from None
    out: list[int | str] = [int(s) if s.strip().isdigit() else s.strip() for s in lines if s.strip()]
    if not out:
        raise OnboardingError(f"--anchor-questions {path} lists no question")
    return out


def _cmd_onboard(args: argparse.Namespace) -> None:
    from scope_shared.history import History
    from scope_shared.onboarding import DEFAULT_ANCHORS, load_pack, onboard

    if (args.model is None) == (args.model_object is None) and not args.dry_run:
        raise OnboardingError("give exactly one of --model PROVIDER:MODEL and --model-object MODULE:ATTR")
    card = _card(args)
    target = args.out or args.history
    if target is None and not args.dry_run:
        raise OnboardingError("--out DIR is needed to keep the onboarded model (or --history DIR to grow it in place)")
    pack = load_pack(args.pack)
    source = args.history or (target if target and (Path(target) / "manifest.json").is_file() else None)
    history = History.load(source) if source else pack.history()  # --out accumulates models run after run
    log = args.log or (str(Path(target) / LOG_NAME) if target else None)
    model = None
    if not args.dry_run:
        model = args.model if args.model else load_object(args.model_object)
    judge = args.judge if args.judge else None
    made = [] if args.dry_run or not log else _missing_dirs(Path(log).parent)
    if made:
        made[0].mkdir(parents=True, exist_ok=True)
    try:
        result = onboard(
            model, card, history=history, pack=pack, n_anchors=DEFAULT_ANCHORS if args.anchors is None else args.anchors, max_spend=args.max_spend,
            concurrency=args.concurrency, feedback_log=None if args.dry_run else log, run_code=args.run_code,
            judge=judge, dry_run=args.dry_run, show_progress=not args.no_progress,
            anchors=_anchor_questions(args.anchor_questions) if args.anchor_questions else None, seed=args.seed,
        )
    except BaseException:
        _remove_if_nothing_kept(made, Path(log) if log else None)
        raise
    if args.dry_run:
        print(result.plan.text())
        print("dry run: no model was called")
        return
    history.save(target)
    print(result.report.text())
    print(f"saved {len(history)} questions, models {', '.join(history.models)} -> {target} (log: {log})")
    if args.report_json:
        Path(args.report_json).write_text(json.dumps(result.report.to_dict(), indent=2, default=str), encoding="utf-8")


def _missing_dirs(folder: Path) -> list[Path]:
    """The folders from ``folder`` upward that do not exist yet, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_if_nothing_kept(made: list[Path], log: Path | None) -> None:
    """After a failed onboarding: remove the folders this run created if no graded answer was logged
    in them (an empty folder is no history, and later commands would stumble on it). A log with
    answers stays: the same command resumes from it without asking those questions again."""
    if not made:
        return
    if log is not None and log.is_file() and len(log.read_bytes().splitlines()) > 1:  # header + answers
        return
    if log is not None and log.is_file():
        log.unlink()
    for folder in made:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return  # something else was written there: leave it


def _cmd_pack_build(args: argparse.Namespace) -> None:
    from scope_shared.onboarding.pack_build import build_llmrouter9_pack, build_pack, read_questions_file

    if args.llmrouter9 is not None:
        from scope_shared.data import dataset_path

        root = args.llmrouter9 or dataset_path("llmrouter-9")
        out = build_llmrouter9_pack(root, args.out, args.embedder)
    else:
        if not args.questions:
            raise OnboardingError("give --questions questions.jsonl (your labelled questions) or --llmrouter9 [DIR]")
        table = None
        if args.table:
            from scope_shared.data import load_routing_table

            if not args.models:
                raise DataSetError("--table needs --models (a JSON file of prices)")
            table = load_routing_table(args.table, args.models)
        out = build_pack(args.out, read_questions_file(args.questions), table, args.embedder,
                         name=args.name or Path(args.out).name, source=args.source, license_file=args.license)
    _cmd_pack_info(argparse.Namespace(pack=str(out)))


def _cmd_pack_info(args: argparse.Namespace) -> None:
    from scope_shared.onboarding import load_pack

    print(json.dumps(load_pack(args.pack).info(), indent=2))


def add_commands(sub: Any) -> None:
    """Register ``onboard`` and ``pack build|info`` on the top-level parser."""
    p = sub.add_parser("onboard", help="ask a new model the anchor questions, grade, add it to a history")
    who = p.add_argument_group("the model")
    who.add_argument("--model", default=None, help="an init_chat_model string, e.g. openai:gpt-4o-mini")
    who.add_argument("--model-object", default=None, help="MODULE:ATTR of a chat model / LlamaIndex LLM / function (or a zero-argument factory)")
    who.add_argument("--card", default=None, help="JSON model card: name, input_price, output_price, ...")
    who.add_argument("--name", default=None, help="model name (default: from --model)")
    who.add_argument("--input-price", type=float, default=None, help="USD per 1M input tokens")
    who.add_argument("--output-price", type=float, default=None, help="USD per 1M output tokens")
    p.add_argument("--history", default=None, help="a history directory to grow (default: --out if it holds one, else a new one from the pack)")
    p.add_argument("--out", default=None, help="where to save the grown history (default: --history); reruns grow it")
    p.add_argument("--pack", default=None, help="anchor pack name or directory (default: the bundled llmrouter-9)")
    p.add_argument("--anchors", type=int, default=None, help="how many anchors to draw from the history (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the anchor draw (default 0; the same seed draws the same anchors)")
    p.add_argument("--anchor-questions", default=None,
                   help="a file of your own anchors instead of a draw: one pack question a line, by id or text")
    p.add_argument("--max-spend", type=float, default=None, help="cap in USD on this model's onboarding, across reruns")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--log", default=None, help=f"feedback log (default: <out>/{LOG_NAME}); makes reruns resume")
    p.add_argument("--run-code", action="store_true", help="grade code answers by running them in the sandbox (bubblewrap; opt-in)")
    p.add_argument("--judge", default=None, help="provider:model of an LLM judge for judge-metric questions")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the expected spend; call nothing")
    p.add_argument("--report-json", default=None, help="also write the report as JSON here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_onboard)

    pack = sub.add_parser("pack", help="build or inspect an anchor pack")
    psub = pack.add_subparsers(dest="pack_command", required=True)
    b = psub.add_parser("build", help="build a pack from your labelled questions (or from llmrouter-9)")
    b.add_argument("--out", required=True)
    b.add_argument("--questions", default=None, help="JSONL of questions: text, benchmark, metric, reference, ... (docs/anchor-pack.md)")
    b.add_argument("--table", default=None, help="known models' outcomes: a routing table (.jsonl/.csv/.parquet)")
    b.add_argument("--models", default=None, help="JSON prices for --table")
    b.add_argument("--llmrouter9", nargs="?", const="", default=None, help="build the bundled pack from this llmrouter-9 folder")
    b.add_argument("--name", default=None)
    b.add_argument("--source", default=None, help="where the data comes from (kept in the manifest)")
    b.add_argument("--license", default=None, help="the data's licence file, shipped in the pack")
    b.add_argument("--embedder", default=None, help="sentence-transformers path (default: bundled MiniLM)")
    b.set_defaults(func=_cmd_pack_build)
    i = psub.add_parser("info", help="verify a pack and describe it")
    i.add_argument("pack", nargs="?", default=None, help="name or directory (default: the bundled llmrouter-9)")
    i.set_defaults(func=_cmd_pack_info)
