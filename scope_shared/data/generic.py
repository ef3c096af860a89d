"""Loader for a user's own routing logs: one row per (question, model) plus a models file with prices.

Rows (JSONL, CSV or parquet) need ``question``, ``model``, ``score`` (0..1); optional
``output_tokens``, ``cost`` (real USD) and ``benchmark``. The models file is JSON: either
``{name: {"input_price": .., "output_price": ..}}`` or a list of model-card dicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.cards import to_cards
from scope_shared.data.table import RoutingTable
from scope_shared.errors import DataSetError


def _read_rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text().split("\n"), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataSetError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        return rows
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        return df.to_dict(orient="records")
    raise DataSetError(f"unsupported routing table format {suffix!r}: use .jsonl, .csv or .parquet")


def load_routing_table(rows_path: str | Path, models_path: str | Path, name: str | None = None) -> RoutingTable:
    """Read a long-format routing table and its price file into a `RoutingTable`."""
    rows_path, models_path = Path(rows_path), Path(models_path)
    for p in (rows_path, models_path):
        if not p.is_file():
            raise DataSetError(f"file {str(p)!r} does not exist")
    raw_models = json.loads(models_path.read_text())
    if isinstance(raw_models, dict):
        raw_models = [{"name": k, **v} for k, v in raw_models.items()]
    card_fields = {"name", "input_price", "output_price", "tags", "context_limit", "default_output_tokens"}
    cards = to_cards([{k: v for k, v in c.items() if k in card_fields} for c in raw_models])
    rows = _read_rows(rows_path)
    qs: dict[str, int] = {}
    bench: list[str] = []
    models = sorted({str(r.get("model")) for r in rows})
    unknown = [m for m in models if m not in cards]
    if unknown:
        raise DataSetError(f"models without a price in {models_path.name}: {', '.join(unknown)}")
    cells: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
    for n, r in enumerate(rows, 1):
        for key in ("question", "model", "score"):
            if r.get(key) is None:
                raise DataSetError(f"{rows_path.name} row {n}: field {key!r} is missing")
        q = str(r["question"]).strip()
        if not q:
            raise DataSetError(f"{rows_path.name} row {n}: empty question")
        if q not in qs:
            qs[q] = len(qs)
            bench.append(str(r.get("benchmark") or "default"))
        score = float(r["score"])
        if not 0 <= score <= 1:
            raise DataSetError(f"{rows_path.name} row {n}: score {score} is outside [0, 1]")
        tok = r.get("output_tokens")
        cost = r.get("cost")
        cells.setdefault((qs[q], models.index(str(r["model"]))), []).append(
            (score, np.nan if tok is None else float(tok), np.nan if cost is None else float(cost))
        )
    shape = (len(qs), len(models))
    scores, toks, costs = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    for (i, j), vals in cells.items():
        arr = np.array(vals)
        scores[i, j] = arr[:, 0].mean()
        with np.errstate(all="ignore"):
            toks[i, j] = np.nanmean(arr[:, 1]) if np.isfinite(arr[:, 1]).any() else np.nan
            costs[i, j] = np.nanmean(arr[:, 2]) if np.isfinite(arr[:, 2]).any() else np.nan
    return RoutingTable(
        name=name or rows_path.stem,
        questions=list(qs),
        benchmarks=bench,
        models=models,
        scores=scores,
        cards={m: cards[m] for m in models},
        output_tokens=toks if np.isfinite(toks).any() else None,
        cost=costs if np.isfinite(costs).any() else None,
    )
