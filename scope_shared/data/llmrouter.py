"""Loader for ``llmrouter-9`` (LLMRouter's 9 models x 6,108 questions; see its README).

Its published test file shares 119 question texts with its train file, so both are pooled, identical
texts (after stripping whitespace) are merged with their outcomes averaged, and callers split the
unique questions themselves (`RoutingTable.split`). The data has no output-token counts: costs are
prices times assumed token counts, stated in the table's notes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.data.table import RoutingTable
from scope_shared.errors import DataSetError


def load_llmrouter9(path: str | Path, default_output_tokens: float = 256.0) -> RoutingTable:
    """Pool, deduplicate and join the llmrouter-9 files in ``path`` into one `RoutingTable`."""
    root = Path(path)
    needed = ["scores_train.json", "scores_test.json", "queries_train.jsonl", "queries_test.jsonl", "models.json"]
    for name in needed:
        if not (root / name).is_file():
            raise DataSetError(f"{root} is not the llmrouter-9 data: {name} is missing")
    task_of: dict[str, str] = {}
    for name in ("queries_train.jsonl", "queries_test.jsonl"):
        for line in (root / name).read_text().split("\n"):
            if line.strip():
                row = json.loads(line)
                task_of.setdefault(row["query"].strip(), row["task_name"])
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    order: list[str] = []
    for name in ("scores_train.json", "scores_test.json"):
        for item in json.loads((root / name).read_text()):
            q = item["question"].strip()
            if q not in sums:
                order.append(q)
            for m, s in item["scores"].items():
                sums[q][m].append(float(s))
    models = sorted({m for per in sums.values() for m in per})
    scores = np.full((len(order), len(models)), np.nan)
    for i, q in enumerate(order):
        for j, m in enumerate(models):
            if sums[q][m]:
                scores[i, j] = float(np.mean(sums[q][m]))
    prices = json.loads((root / "models.json").read_text())
    cards = {
        m: ModelCard(
            name=m,
            input_price=prices[m]["input_price"],
            output_price=prices[m]["output_price"],
            tags=(prices[m].get("size", ""),),
            default_output_tokens=default_output_tokens,
        )
        for m in models
    }
    missing_task = [q for q in order if q not in task_of]
    if missing_task:
        raise DataSetError(f"{len(missing_task)} llmrouter-9 questions have no benchmark in queries_*.jsonl")
    return RoutingTable(
        name="llmrouter-9",
        questions=order,
        benchmarks=[task_of[q] for q in order],
        models=models,
        scores=scores,
        cards=cards,
        notes=[
            "llmrouter-9 has no output-token counts: cost = price x (input tokens ~ chars/4 "
            f"+ {default_output_tokens:g} assumed output tokens)"
        ],
    )
