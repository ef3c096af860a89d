"""Command bodies for ``scope train``, ``scope history add-model`` and ``scope history suggest``.

Registered by `add_commands` from ``scope_shared.cli`` (kept there as one call, so the core CLI stays
small). A trained estimator directory holds ``config.json`` + ``model.safetensors`` and, when
calibrated, ``calibration.json``; `load_estimator` reads it back (JSON and tensors only).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.errors import HistoryStoreError, OnboardingError

CALIBRATION = "calibration.json"


def load_estimator(path: str | Path) -> Any:
    """A `LearnedEstimator` from ``scope train``'s output, wrapped by its calibrator if it has one."""
    from scope_shared.estimators.calibration import CalibratedEstimator, Calibrator
    from scope_shared.estimators.learned import LearnedEstimator

    est = LearnedEstimator.load(path)
    cal = Path(path) / CALIBRATION
    return CalibratedEstimator(est, Calibrator.load(cal)) if cal.is_file() else est


def train_estimator(
    history_dir: str | Path,
    out: str | Path,
    seed: int = 0,
    epochs: int | None = None,
    calibration: str = "platt",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train a `LearnedEstimator` on a saved history, calibrate it on its validation part, save it."""
    from scope_shared.estimators.calibration import (
        calibrate,
        expected_calibration_error,
        history_outcomes,
        loo_predictions,
    )
    from scope_shared.estimators.learned import LearnedConfig, LearnedEstimator
    from scope_shared.history import History

    history = History.load(history_dir)
    cfg = LearnedConfig(seed=seed)
    if epochs is not None:
        cfg.epochs = epochs
    est = LearnedEstimator(cfg)
    t0 = time.time()
    report = est.fit(history, show_progress=show_progress)
    est.save(out)
    info: dict[str, Any] = {
        "seconds": round(time.time() - t0, 1),
        "best_epoch": report.best_epoch,
        "val_auroc": report.val_auroc,
        "val_loss": report.val_loss[report.best_epoch],
    }
    cal_path = Path(out) / CALIBRATION
    if calibration != "none":
        val = np.array(report.val_question_ids)
        y = history_outcomes(history, val, history.models)
        info["val_ece_raw"] = expected_calibration_error(loo_predictions(est, history, val, history.models).p_correct, y)
        wrapped = calibrate(est, history, val, calibration)
        wrapped.calibrator.save(cal_path)
        info["calibration"] = calibration
    elif cal_path.exists():
        cal_path.unlink()
    return info


def _cmd_train(args: argparse.Namespace) -> None:
    info = train_estimator(args.history, args.out, args.seed, args.epochs, args.calibration)
    print(json.dumps(info, indent=2))
    print(f"saved learned estimator -> {args.out}")


def _cmd_add_model(args: argparse.Namespace) -> None:
    from scope_shared.cards import ModelCard
    from scope_shared.history import History
    from scope_shared.onboarding import estimated_accuracy
    from scope_shared.routing.router import Router

    history = History.load(args.history)
    if not history.cards:
        raise HistoryStoreError(f"history {args.history} holds no model cards; build it with 'scope history build'")
    try:
        card = ModelCard.create(**json.loads(Path(args.card).read_text()))
        rows = [json.loads(line) for line in Path(args.outcomes).read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise OnboardingError(f"cannot read the card or outcomes: {exc}") from None
    outcomes, weights = {}, {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "question" not in row or "correct" not in row:
            raise OnboardingError(f"outcomes line {i + 1}: needs 'question' and 'correct'")
        question = row.pop("question")
        if "weight" in row:  # as `scope history suggest` printed it: the inverse inclusion probability
            weights[question] = row.pop("weight")
        outcomes[question] = row
    if weights and len(weights) != len(outcomes):
        raise OnboardingError("give a weight on every outcomes line or on none")
    router = Router(history.cards.values(), history, embedder=args.embedder)
    router.add_model(card, outcomes)
    history.save(args.out or args.history)
    print(f"added {card.name} with {len(outcomes)} outcomes -> {args.out or args.history}")
    report = estimated_accuracy(history, {q: float(o["correct"]) for q, o in outcomes.items()},
                                weights=weights or None, name=card.name)
    print("\n".join(report.lines()))


def _cmd_suggest(args: argparse.Namespace) -> None:
    from scope_shared.cli import load_history_arg
    from scope_shared.onboarding import suggest_questions

    for s in suggest_questions(load_history_arg(args.history), args.n, seed=args.seed):
        print(json.dumps({"question": s.text, "benchmark": s.benchmark, "difficulty": round(s.difficulty, 3),
                          "weight": round(s.weight, 4)}))


def add_commands(sub: Any, hsub: Any) -> None:
    """Register ``train`` on the top-level parser and ``add-model`` / ``suggest`` under ``history``."""
    train = sub.add_parser("train", help="train the learned estimator on a history (CPU, minutes)")
    train.add_argument("--history", required=True, help="a history directory (scope history build)")
    train.add_argument("--out", required=True, help="directory for the trained estimator")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--calibration", choices=("platt", "isotonic", "none"), default="platt")
    train.set_defaults(func=_cmd_train)

    add = hsub.add_parser("add-model", help="add a new model from its outcomes (no retraining)")
    add.add_argument("--history", required=True)
    add.add_argument("--card", required=True, help="JSON model card: name, input_price, output_price, ...")
    add.add_argument("--outcomes", required=True,
                     help='JSONL: {"question": ..., "correct": ..., "output_tokens": ..., "weight": ...} '
                          "(weight: optional, as 'scope history suggest' prints it); prints the estimated accuracy")
    add.add_argument("--out", default=None, help="write the grown history here (default: in place)")
    add.add_argument("--embedder", default=None)
    add.set_defaults(func=_cmd_add_model)

    sug = hsub.add_parser("suggest", help="which history questions a new model should answer first")
    sug.add_argument("--history", default=None, help="a history directory or an anchor pack (default: the bundled pack)")
    sug.add_argument("-n", type=int, default=20)
    sug.add_argument("--seed", type=int, default=0, help="the sample's random draw")
    sug.set_defaults(func=_cmd_suggest)
