"""``scope history import|export`` (directory <-> PostgreSQL) and ``scope budget create|show``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _cmd_import(args: argparse.Namespace) -> None:
    from scope_shared.history.postgres_transfer import import_directory

    shared = import_directory(args.directory, args.url, args.name, follow=False)
    shared.close()
    print(f"history {args.name!r}: {len(shared)} questions, {shared.n_records} outcomes, models {shared.models}")


def _cmd_export(args: argparse.Namespace) -> None:
    from scope_shared.history.postgres_transfer import export_directory

    h = export_directory(args.url, args.directory, args.name)
    print(f"saved {len(h)} questions, {h.n_records} outcomes of {args.name!r} -> {args.directory}")


def _period(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def _cmd_budget_create(args: argparse.Namespace) -> None:
    from scope_shared.budget.ledger import Ledger

    ledger = Ledger.connect(args.url, args.name, budget=args.budget, mode=args.mode,
                            period=args.period, reconfigure=args.reconfigure)
    print(json.dumps(ledger.summary()))
    ledger.close()


def _cmd_budget_show(args: argparse.Namespace) -> None:
    from scope_shared.budget.ledger import Ledger

    ledger = Ledger.connect(args.url, args.name)
    print(json.dumps(ledger.summary()))
    ledger.close()


def add_commands(sub: Any, hsub: Any) -> None:
    imp = hsub.add_parser("import", help="copy a history directory into a PostgreSQL database")
    imp.add_argument("directory")
    imp.add_argument("url", help="postgresql://user[:password]@host[:port]/dbname")
    imp.add_argument("--name", default="default", help="the shared history's name (default: default)")
    imp.set_defaults(func=_cmd_import)
    exp = hsub.add_parser("export", help="write a shared history to a history directory")
    exp.add_argument("url")
    exp.add_argument("directory")
    exp.add_argument("--name", default="default")
    exp.set_defaults(func=_cmd_export)

    budget = sub.add_parser("budget", help="shared budgets in PostgreSQL")
    bsub = budget.add_subparsers(dest="budget_command", required=True)
    create = bsub.add_parser("create", help="create (or with --reconfigure, change) a named shared budget")
    create.add_argument("url")
    create.add_argument("name")
    create.add_argument("--budget", type=float, default=None, help="USD (omit for an unlimited, accounting-only budget)")
    create.add_argument("--mode", choices=("raise", "end", "soft"), default="raise",
                        help="when spent: stop with BudgetExceeded (raise), end an agent run (end), or go on cheapest (soft)")
    create.add_argument("--period", type=_period, default=None, help="hourly, daily, weekly or seconds (default: never resets)")
    create.add_argument("--reconfigure", action="store_true", help="change an existing budget's settings")
    create.set_defaults(func=_cmd_budget_create)
    show = bsub.add_parser("show", help="print a shared budget's spend (JSON)")
    show.add_argument("url")
    show.add_argument("name")
    show.set_defaults(func=_cmd_budget_show)
