"""Loaders for the other bundled real data sets (see each folder's README.md), as `RoutingTable`s.

- ``routerbench-11``: 11 models, real per-question USD cost; output tokens = response characters / 4
  (the data has no token counts); prices, which the data does not give, are recovered per model by
  non-negative least squares of the real cost on (prompt chars / 4, response chars / 4).
- ``routerarena-2``: 2 hosted models with real provider output-token counts and per-call costs
  (scores clipped to [0, 1]: one METEOR score is -0.03).
- ``alpacaeval-lengths``: output lengths only (tokens = characters / 4) of up to 227 models; no
  correctness (scores are NaN) and no prices (cards carry a placeholder price of 0).
"""

from __future__ import annotations

import ast
import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.data.table import RoutingTable
from scope_shared.errors import DataSetError

CHARS_PER_TOKEN = 4.0


def _need(root: Path, names: Sequence[str], what: str) -> None:
    for name in names:
        if not (root / name).is_file():
            raise DataSetError(f"{root} is not the {what} data: {name} is missing")


def _prompt_text(raw: str) -> str:
    """RouterBench stores prompts as a Python list literal of one string: unwrap it."""
    try:
        val = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw.strip()
    if isinstance(val, (list, tuple)) and len(val) == 1 and isinstance(val[0], str):
        return val[0].strip()
    return raw.strip()


def _fit_prices(in_tok: np.ndarray, out_tok: np.ndarray, cost: np.ndarray) -> tuple[float, float]:
    """USD per 1M (input, output) tokens that best explain the real costs (non-negative LSQ)."""
    from scipy.optimize import nnls

    keep = np.isfinite(cost) & np.isfinite(in_tok) & np.isfinite(out_tok)
    a = np.stack([in_tok[keep], out_tok[keep]], 1) / 1e6
    (pi, po), _ = nnls(a, cost[keep])
    return float(pi), float(po)


def load_routerbench11(path: str | Path) -> RoutingTable:
    """RouterBench's 0-shot subset (arc-challenge, mbpp, winogrande) x 11 models, real costs."""
    root = Path(path)
    _need(root, ["routerbench_long.csv", "queries.csv"], "routerbench-11")
    with open(root / "queries.csv", newline="") as f:
        prompt = {r["sample_id"]: (_prompt_text(r["prompt"]), r["benchmark"]) for r in csv.DictReader(f)}
    cells: dict[str, dict[str, list[tuple[float, float, float, float]]]] = defaultdict(lambda: defaultdict(list))
    order: list[str] = []
    bench: dict[str, str] = {}
    with open(root / "routerbench_long.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["score"] == "":
                continue  # 14 questions have no scores (README): dropped
            if r["sample_id"] not in prompt:
                raise DataSetError(f"routerbench-11: {r['sample_id']} has no prompt in queries.csv")
            q, b = prompt[r["sample_id"]]
            if q not in cells:
                order.append(q)
                bench[q] = b
            cells[q][r["model"]].append(
                (float(r["score"]), float(r["total_cost_usd"]), float(r["response_chars"]), float(r["prompt_chars"]))
            )
    models = sorted({m for per in cells.values() for m in per})
    shape = (len(order), len(models))
    scores, cost, toks, in_tok = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    for i, q in enumerate(order):  # duplicated prompts (2) are merged, outcomes averaged
        for j, m in enumerate(models):
            if cells[q][m]:
                arr = np.array(cells[q][m])
                scores[i, j], cost[i, j] = arr[:, 0].mean(), arr[:, 1].mean()
                toks[i, j], in_tok[i, j] = arr[:, 2].mean() / CHARS_PER_TOKEN, arr[:, 3].mean() / CHARS_PER_TOKEN
    cards = {}
    for j, m in enumerate(models):
        pi, po = _fit_prices(in_tok[:, j], toks[:, j], cost[:, j])
        cards[m] = ModelCard(name=m, input_price=pi, output_price=po, tags=("routerbench",))
    return RoutingTable(
        name="routerbench-11",
        questions=order,
        benchmarks=[bench[q] for q in order],
        models=models,
        scores=scores,
        cards=cards,
        output_tokens=toks,
        cost=cost,
        notes=[
            "routerbench-11: real per-question USD cost; output tokens = response characters / 4 (no token "
            "counts in the data); card prices recovered by least squares from the real costs"
        ],
    )


def load_routerarena2(path: str | Path) -> RoutingTable:
    """RouterArena's cached results: 809 questions x 2 models, real token counts and costs."""
    root = Path(path)
    files = sorted(p for p in root.glob("*.jsonl"))
    _need(root, ["cost.json"], "routerarena-2")
    if not files:
        raise DataSetError(f"{root} is not the routerarena-2 data: no *.jsonl result files")
    prices = json.loads((root / "cost.json").read_text())
    models = [p.stem for p in files]
    rows: dict[str, dict[str, tuple[float, float, float]]] = defaultdict(dict)
    order: list[str] = []
    bench: dict[str, str] = {}
    for p, m in zip(files, models):
        if m not in prices:
            raise DataSetError(f"routerarena-2: no price for {m} in cost.json")
        for n, line in enumerate(p.read_text().split("\n"), 1):
            if not line.strip():
                continue
            r = json.loads(line)
            q = r["question"].strip()
            ev = r.get("evaluation_result") or {}
            if not r.get("success", True) or ev.get("score") is None:
                continue
            if q not in bench:
                order.append(q)
                bench[q] = r["global_index"].rsplit("_", 1)[0]
            rows[q][m] = (
                min(max(float(ev["score"]), 0.0), 1.0),  # one METEOR score is slightly negative: clipped
                float(r["token_usage"]["output_tokens"]),
                float(ev.get("inference_cost", np.nan)),
            )
    shape = (len(order), len(models))
    scores, toks, cost = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    for i, q in enumerate(order):
        for j, m in enumerate(models):
            if m in rows[q]:
                scores[i, j], toks[i, j], cost[i, j] = rows[q][m]
    cards = {
        m: ModelCard(
            name=m,
            input_price=prices[m]["input_token_price_per_million"],
            output_price=prices[m]["output_token_price_per_million"],
        )
        for m in models
    }
    return RoutingTable(
        name="routerarena-2",
        questions=order,
        benchmarks=[bench[q] for q in order],
        models=models,
        scores=scores,
        cards=cards,
        output_tokens=toks,
        cost=cost,
        notes=["routerarena-2: real provider output-token counts and per-call USD costs"],
    )


def load_alpacaeval_lengths(path: str | Path, models: Sequence[str] | None = None) -> RoutingTable:
    """AlpacaEval output lengths (tokens = characters / 4) of ``models`` (default: all but NullModel).

    No correctness: scores are all NaN; no prices: cards carry price 0 (lengths only).
    """
    root = Path(path)
    _need(root, ["alpacaeval_long.csv", "instructions.csv"], "alpacaeval-lengths")
    with open(root / "instructions.csv", newline="") as f:
        inst = {int(r["instruction_idx"]): (r["instruction"].strip(), r["dataset"]) for r in csv.DictReader(f)}
    lengths: dict[str, dict[int, float]] = defaultdict(dict)
    with open(root / "alpacaeval_long.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["model"] == "NullModel" or r["output_chars"] == "":
                continue
            lengths[r["model"]][int(r["instruction_idx"])] = float(r["output_chars"]) / CHARS_PER_TOKEN
    names = sorted(lengths) if models is None else list(models)
    missing = [m for m in names if m not in lengths]
    if missing:
        raise DataSetError(f"alpacaeval-lengths has no model(s) {', '.join(missing)}")
    seen: dict[str, int] = {}
    for idx in sorted(inst):  # identical instruction texts would break uniqueness: keep the first
        seen.setdefault(inst[idx][0], idx)
    ids = list(seen.values())
    toks = np.array([[lengths[m].get(i, np.nan) for m in names] for i in ids])
    return RoutingTable(
        name="alpacaeval-lengths",
        questions=[inst[i][0] for i in ids],
        benchmarks=[inst[i][1] for i in ids],
        models=names,
        scores=np.full(toks.shape, np.nan),
        cards={m: ModelCard(name=m, input_price=0.0, output_price=0.0) for m in names},
        output_tokens=toks,
        notes=["alpacaeval-lengths: output tokens = characters / 4; no correctness, no prices"],
    )
