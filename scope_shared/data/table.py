"""A routing table: questions x models with scores (and token counts or real costs where known)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from scope_shared.progress import progress
from scope_shared.cards import ModelCard, Outcome
from scope_shared.embedders import Embedder, as_embedder, embed_with_cache
from scope_shared.errors import DataSetError, UnknownModelError
from scope_shared.history import History
from scope_shared.tokens import TokenCounter, approx_token_count


@dataclass
class RoutingTable:
    """Outcomes of ``models`` on unique ``questions``; NaN marks a missing outcome.

    ``output_tokens`` and ``cost`` (real USD per call) are optional (n_questions, n_models) arrays.
    """

    name: str
    questions: list[str]
    benchmarks: list[str]
    models: list[str]
    scores: np.ndarray
    cards: dict[str, ModelCard]
    output_tokens: np.ndarray | None = None
    cost: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n, m = len(self.questions), len(self.models)
        if self.scores.shape != (n, m):
            raise DataSetError(f"scores shape {self.scores.shape} != ({n}, {m})")
        if len(self.benchmarks) != n:
            raise DataSetError("one benchmark name per question is needed")
        if len(set(self.questions)) != n:
            raise DataSetError("routing table questions must be unique (deduplicate first)")
        for arr_name in ("output_tokens", "cost"):
            arr = getattr(self, arr_name)
            if arr is not None and arr.shape != (n, m):
                raise DataSetError(f"{arr_name} shape {arr.shape} != ({n}, {m})")
        missing = [x for x in self.models if x not in self.cards]
        if missing:
            raise DataSetError(f"no price card for model(s) {', '.join(missing)}")

    def __len__(self) -> int:
        return len(self.questions)

    # ------------------------------------------------------------------ views
    def subset(self, idx: Sequence[int] | np.ndarray) -> "RoutingTable":
        """The table restricted to questions ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        return replace(
            self,
            questions=[self.questions[i] for i in idx],
            benchmarks=[self.benchmarks[i] for i in idx],
            scores=self.scores[idx],
            output_tokens=None if self.output_tokens is None else self.output_tokens[idx],
            cost=None if self.cost is None else self.cost[idx],
            notes=list(self.notes),
        )

    def select_models(self, models: Sequence[str]) -> "RoutingTable":
        """The table restricted to ``models`` (in that order)."""
        for m in models:
            if m not in self.models:
                raise UnknownModelError(f"model {m!r} is not in table {self.name!r}")
        cols = [self.models.index(m) for m in models]
        return replace(
            self,
            models=list(models),
            scores=self.scores[:, cols],
            output_tokens=None if self.output_tokens is None else self.output_tokens[:, cols],
            cost=None if self.cost is None else self.cost[:, cols],
            cards={m: self.cards[m] for m in models},
            notes=list(self.notes),
        )

    def split(self, test_size: float = 0.2, seed: int = 0) -> tuple["RoutingTable", "RoutingTable"]:
        """Split unique questions into (history, test), stratified by benchmark, with a seed."""
        train_idx, test_idx = stratified_split(self.benchmarks, test_size, seed)
        return self.subset(train_idx), self.subset(test_idx)

    # ------------------------------------------------------------------ costs
    def call_costs(
        self, token_counter: TokenCounter = approx_token_count, default_output_tokens: float = 256.0
    ) -> np.ndarray:
        """USD per (question, model): real cost if known, else card price x token counts.

        Without output-token counts, each model's per-benchmark prior (``output_tokens_by_benchmark``),
        else its ``default_output_tokens`` (or the default given) is assumed; say so wherever the
        figure is shown.
        """
        in_tok = np.array([token_counter(q) for q in self.questions], dtype=np.float64)
        out = np.empty(self.scores.shape)
        for j, m in enumerate(self.models):
            card = self.cards[m]
            toks = np.full(len(self), card.default_output_tokens or default_output_tokens)
            if card.output_tokens_by_benchmark:  # the card's per-benchmark priors, as the router uses them
                priors = card.output_tokens_by_benchmark
                toks = np.array([priors.get(b or "", t) for b, t in zip(self.benchmarks, toks)])
            if self.output_tokens is not None:
                toks = np.where(np.isfinite(self.output_tokens[:, j]), self.output_tokens[:, j], toks)
            out[:, j] = (in_tok * card.input_price + toks * card.output_price) / 1e6
        if self.cost is not None:
            out = np.where(np.isfinite(self.cost), self.cost, out)
        return out

    # ------------------------------------------------------------------ history
    def to_history(
        self,
        embedder: Embedder | None = None,
        show_progress: bool = True,
        embeddings: np.ndarray | None = None,
    ) -> History:
        """Record every known outcome into a new `History` (embedding the questions unless given)."""
        emb = as_embedder(embedder)
        vecs = embeddings if embeddings is not None else embed_with_cache(emb, self.questions, show_progress)
        history = History(emb.dim, emb.name)
        ids = history.add_questions(self.questions, vecs, self.benchmarks)
        rows = range(len(self))
        rows = progress(rows, desc="recording outcomes", total=len(self), enabled=show_progress)
        for i in rows:
            outs = []
            for j, m in enumerate(self.models):
                s = self.scores[i, j]
                if np.isfinite(s):
                    tok = None
                    if self.output_tokens is not None and np.isfinite(self.output_tokens[i, j]):
                        tok = float(self.output_tokens[i, j])
                    outs.append(Outcome(model=m, correct=float(s), output_tokens=tok, source=self.name))
            history.add_outcomes(ids[i], outs)
        history.cards = dict(self.cards)
        return history


def stratified_split(groups: Sequence[str], test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): within each group, a seeded shuffle puts ``test_size`` of it in test."""
    if not 0 < test_size < 1:
        raise DataSetError(f"test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    g = np.asarray(groups)
    train, test = [], []
    for name in sorted(set(groups)):
        idx = np.flatnonzero(g == name)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_size))
        if len(idx) > 1:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))
