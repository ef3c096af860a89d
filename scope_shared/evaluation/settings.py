"""Evaluation settings: what a router may learn from, and what it is tested on.

- ``seen``: every model has all its outcomes in the history part (stratified 80/20 split);
- ``unseen``: held-out models keep ``n_anchors`` outcomes, on random history questions;
- ``onboarding``: as unseen, but the anchors are the questions `suggest_questions` picks from what
  the known models did (what a user onboarding a model answers);
- ``ood``: a seeded random share (default a third, at least one) of the benchmarks is left out of
  the history entirely; the history is every question of the other benchmarks, the test part every
  question of the left-out ones (kinds of questions the router has never seen).

`setting_split` turns a setting and a seed into an `EvalSplit` and its `Truth`, so every router of a
benchmark run sees the same split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from scope_shared.data import RoutingTable, stratified_split
from scope_shared.embedders import FunctionEmbedder
from scope_shared.errors import EvaluationError
from scope_shared.evaluation.harness import Truth, build_split, make_split
from scope_shared.evaluation.routers import EvalSplit
from scope_shared.onboarding import suggest_questions

SettingKind = Literal["seen", "unseen", "onboarding", "ood"]
SETTING_KINDS: tuple[str, ...] = ("seen", "unseen", "onboarding", "ood")


@dataclass(frozen=True)
class Setting:
    """One evaluation setting (see the module doc). ``unseen`` and ``n_anchors`` are for the
    held-out-model settings; ``ood_fraction`` is the share of benchmarks left out in ``ood``."""

    kind: SettingKind
    unseen: tuple[str, ...] = ()
    n_anchors: int | None = None
    ood_fraction: float = 1 / 3

    def __post_init__(self) -> None:
        if self.kind not in SETTING_KINDS:
            raise EvaluationError(f"unknown setting {self.kind!r}; use one of {', '.join(SETTING_KINDS)}")
        if self.kind in ("unseen", "onboarding") and (not self.unseen or not self.n_anchors or self.n_anchors <= 0):
            raise EvaluationError(f"the {self.kind} setting needs held-out models and n_anchors > 0")
        if not 0 < self.ood_fraction < 1:
            raise EvaluationError(f"ood_fraction must be in (0, 1), got {self.ood_fraction}")

    @property
    def name(self) -> str:
        """Its key in results: ``seen``, ``unseen``, ``onboarding-n50``, ``ood``."""
        return f"onboarding-n{self.n_anchors}" if self.kind == "onboarding" else self.kind

    @property
    def held_out_models(self) -> list[str]:
        return list(self.unseen) if self.kind in ("unseen", "onboarding") else []


@dataclass
class SettingSplit:
    """A setting's split for one seed, with what was drawn for it."""

    split: EvalSplit
    truth: Truth
    #: benchmarks left out of the history (``ood``), else empty
    held_out_benchmarks: list[str] = field(default_factory=list)
    #: positions in the history part of the suggested anchors (``onboarding``)
    anchors: np.ndarray | None = None


def n_ood_benchmarks(n_benchmarks: int, fraction: float = 1 / 3) -> int:
    """How many benchmarks ood leaves out: ``floor(fraction x count)``, at least one, and one kept
    (llmrouter-9: 4 of 14; routerbench-11: 1 of 3)."""
    if n_benchmarks < 2:
        raise EvaluationError("the ood setting needs at least two benchmarks (one to keep, one to leave out)")
    return min(max(1, int(fraction * n_benchmarks)), n_benchmarks - 1)


def ood_benchmarks(benchmarks: list[str], seed: int, fraction: float = 1 / 3) -> list[str]:
    """The benchmarks a seed leaves out (`n_ood_benchmarks` of them), drawn at random."""
    names = sorted(set(benchmarks))
    n_out = n_ood_benchmarks(len(names), fraction)
    rng = np.random.default_rng([seed, 13])
    return sorted(rng.choice(names, size=n_out, replace=False).tolist())


def suggested_anchors(table: RoutingTable, embeddings: np.ndarray, hist_idx: np.ndarray,
                      known: list[str], n: int, seed: int = 0) -> np.ndarray:
    """Positions in the history part of the ``n`` questions `suggest_questions` picks (its draw
    ``seed``), seeing only the ``known`` models' outcomes there (the held-out models have none yet)."""
    hist = table.subset(hist_idx).select_models(known)
    vecs = embeddings[hist_idx]

    def no_embedding(texts: list[str]) -> np.ndarray:  # the history part comes pre-embedded
        raise EvaluationError("suggested_anchors embeds nothing")

    history = hist.to_history(FunctionEmbedder(no_embedding, vecs.shape[1], name="precomputed"),
                              show_progress=False, embeddings=vecs)
    return np.array([s.question_id for s in suggest_questions(history, n, seed=seed)], dtype=np.int64)


def setting_split(
    table: RoutingTable,
    embeddings: np.ndarray,
    setting: Setting,
    seed: int,
    test_size: float = 0.2,
    embedder_name: str = "embedder",
) -> SettingSplit:
    """The split of ``setting`` for ``seed`` (see the module doc)."""
    if setting.kind in ("seen", "unseen"):
        split, truth = make_split(table, embeddings, seed, test_size, setting.held_out_models,
                                  setting.n_anchors if setting.kind == "unseen" else None, embedder_name)
        return SettingSplit(split, truth)
    if setting.kind == "onboarding":
        unknown = [m for m in setting.unseen if m not in table.models]
        if unknown:
            raise EvaluationError(f"held-out model(s) not in {table.name}: {', '.join(unknown)}")
        tr, te = stratified_split(table.benchmarks, test_size, seed)
        known = [m for m in table.models if m not in setting.unseen]
        # a fresh draw per split seed, so that means over seeds average over draws too
        anchors = suggested_anchors(table, embeddings, tr, known, int(setting.n_anchors or 0), seed)
        split, truth = build_split(table, embeddings, tr, te, seed, setting.unseen, anchors, embedder_name)
        return SettingSplit(split, truth, anchors=anchors)
    out = ood_benchmarks(table.benchmarks, seed, setting.ood_fraction)
    left_out = np.isin(np.asarray(table.benchmarks), out)
    split, truth = build_split(table, embeddings, np.flatnonzero(~left_out), np.flatnonzero(left_out), seed,
                               embedder_name=embedder_name)
    return SettingSplit(split, truth, held_out_benchmarks=out)
