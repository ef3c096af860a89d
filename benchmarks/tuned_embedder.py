"""The routing-tuned embedder in the benchmarks: trained anew on each split's history part.

A tuned embedder learns from outcomes, so the one trained on a whole data set (or the bundled pack)
has seen the test questions' outcomes. For a fair comparison `routing_quality.py --embedders
...,routing` trains one per (setting, seed) from exactly what the routers of that split may see: the
history part, without the held-out models' outcomes (not even their anchor outcomes) and, in ``ood``,
without the left-out benchmarks; its validation part (for early stopping) is carved from that history.
Test questions are then embedded with the tuned table (inference only).

The benchmark's training is the default one without a time budget (a budget would make the table
depend on the machine's load; epochs are capped). Splits with the same tuning input (``unseen`` and
``onboarding`` hold out the same models) share one training.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import asdict

import numpy as np

from scope_shared.embedders import StaticEmbedder, fast_embedder
from scope_shared.embedders.tuning import TuningConfig, TuningData, embed_pooled, pooling_matrix, tune_table
from scope_shared.data import stratified_split
from scope_shared.evaluation.settings import Setting, setting_split

#: the name `routing_quality.py --embedders` takes for "train one per split"
TUNED = "routing"
#: the benchmark's training: the default one without its time budget (deterministic; epochs are capped)
BENCHMARK_CONFIG = TuningConfig(time_budget_s=None)


def tuning_data_of_split(split, rows: list[int], texts: list[str]) -> TuningData:
    """What a split's routers may learn from, minus the held-out models: the tuner's whole input."""
    keep = [j for j, m in enumerate(split.models) if m not in split.unseen]
    return TuningData(texts=[texts[r] for r in rows], scores=split.hist_scores[:, keep],
                      output_tokens=None if split.hist_tokens is None else split.hist_tokens[:, keep],
                      groups=list(split.hist_benchmarks), models=[split.models[j] for j in keep])


def _rows(pooled, rows: list[int]):
    indptr, ids, vals = pooled
    starts, ends = indptr[rows], indptr[np.asarray(rows) + 1]
    take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
    return np.concatenate([[0], np.cumsum(ends - starts)]), ids[take], vals[take]


class PerSplitTuned:
    """Callable ``(setting, seed) -> embeddings of every text``, training on that split's history part."""

    def __init__(self, table, texts: list[str], test_size: float, config: TuningConfig | None = None,
                 validation: bool = False) -> None:
        self.base = fast_embedder()
        self.table, self.texts, self.test_size, self.validation = table, texts, test_size, validation
        self.config = config or BENCHMARK_CONFIG
        self.pooled = pooling_matrix(self.base, texts)
        self.base_embs = embed_pooled(self.base.table, self.pooled)
        self.row = {q: i for i, q in enumerate(table.questions)}
        self.reports: list[dict] = []
        self._trained: dict[str, np.ndarray] = {}  # tuning input's digest -> embeddings of every text
        self.name = "routing-tuned-per-split+" + self.base.truncation.label

    def uncached_base(self) -> StaticEmbedder:
        """The base table without a per-text cache: what a tuned table costs a query (same shape)."""
        return StaticEmbedder(self.base.path, truncation=self.base.truncation, cache_size=0)

    def __call__(self, setting: Setting, seed: int) -> np.ndarray:
        if self.validation:  # as `routing_quality --validation`: the split of the seed's history part
            part, _ = stratified_split(self.table.benchmarks, self.test_size, seed)
            split = setting_split(self.table.subset(part), self.base_embs[part], setting, seed, self.test_size).split
        else:
            split = setting_split(self.table, self.base_embs, setting, seed, self.test_size).split
        rows = [self.row[q] for q in split.hist_questions]
        data = tuning_data_of_split(split, rows, self.texts)
        key = _digest(rows, data, seed)
        if key in self._trained:  # same history part, same models (unseen and onboarding): same table
            return self._trained[key]
        t0 = time.perf_counter()
        tuned, report = tune_table(self.base, data, TuningConfig(**{**asdict(self.config), "seed": seed}),
                                   pooled=_rows(self.pooled, rows))
        self.reports.append({"setting": setting.name, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
                             **asdict(report)})
        print(f"  tuned embedder for {setting.name} seed {seed}: {report.epochs} epochs (best {report.best_epoch}), "
              f"validation loss {report.val_loss_base:.4f} -> {report.val_loss_best:.4f}, {report.seconds:.0f}s",
              file=sys.stderr, flush=True)
        self._trained[key] = embs = embed_pooled(tuned, self.pooled)
        return embs


def _digest(rows: list[int], data: TuningData, seed: int) -> str:
    """What decides a training: the history rows, the models and their outcomes, the seed."""
    h = hashlib.sha256(np.asarray(rows, np.int64).tobytes())
    h.update(np.nan_to_num(data.scores, nan=-1.0).tobytes())
    h.update("\x00".join(data.models).encode())
    h.update(str(seed).encode())
    return h.hexdigest()
