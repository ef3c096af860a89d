"""The history: questions, their embeddings (faiss-indexed), and per-model outcomes.

It is the router's memory. It grows incrementally (new questions, a new model's outcomes on existing
questions, live feedback) and answers "the k most similar questions that model M has outcomes for".
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.cards import ModelCard, Outcome
from scope_shared.errors import ScopeError, UnknownModelError
from scope_shared.history.anchors import Anchors
from scope_shared.history.columns import ModelArrays, ModelColumn
from scope_shared.history.index import VectorIndex


@dataclass(frozen=True)
class OutcomeRecord:
    """One stored outcome: which question (by id) and what the model did."""

    question_id: int
    outcome: Outcome


class History:
    """Questions, embeddings and outcomes; thread-safe for concurrent readers and writers."""

    def __init__(self, dim: int, embedder_name: str | None = None) -> None:
        if dim <= 0:
            raise ScopeError(f"embedding dimension must be positive, got {dim}")
        self.dim = dim
        self.embedder_name = embedder_name
        self.cards: dict[str, ModelCard] = {}
        self._texts: list[str] = []
        self._benchmarks: list[str | None] = []
        self._text_ids: dict[str, int] = {}
        self._emb = np.zeros((0, dim), dtype=np.float32)
        self._n = 0
        self._index = VectorIndex(dim)
        self._columns: dict[str, ModelColumn] = {}
        self._records: list[OutcomeRecord] = []
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        return self._n

    @property
    def models(self) -> list[str]:
        """Models that have at least one outcome, in insertion order."""
        return list(self._columns)

    @property
    def records(self) -> Sequence[OutcomeRecord]:
        """Every outcome ever added, in order (what is persisted)."""
        return tuple(self._records)

    @property
    def embeddings(self) -> np.ndarray:
        """(n_questions, dim) unit vectors (a read-only view)."""
        view = self._emb[: self._n]
        view.flags.writeable = False
        return view

    def text(self, qid: int) -> str:
        return self._texts[qid]

    def benchmark(self, qid: int) -> str | None:
        return self._benchmarks[qid]

    @property
    def benchmarks(self) -> list[str | None]:
        return list(self._benchmarks)

    def question_id(self, text: str) -> int | None:
        """Id of a question already in the history, by exact text (stripped)."""
        return self._text_ids.get(text.strip())

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and text.strip() in self._text_ids

    def model_arrays(self, model: str) -> ModelArrays:
        """A model's outcomes as sorted arrays (question ids, mean scores, tokens)."""
        return self._column(model).arrays()

    def n_outcomes(self, model: str) -> int:
        return len(self._column(model))

    def _column(self, model: str) -> ModelColumn:
        try:
            return self._columns[model]
        except KeyError:
            raise UnknownModelError(
                f"model {model!r} has no outcomes in the history (known: {', '.join(self.models) or 'none'})"
            ) from None

    # ---------------------------------------------------------------- writing
    def add_questions(
        self,
        texts: Sequence[str],
        embeddings: np.ndarray,
        benchmarks: Sequence[str | None] | None = None,
    ) -> list[int]:
        """Add questions (texts already present keep their id); returns each text's id."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape != (len(texts), self.dim):
            raise ScopeError(
                f"embeddings have shape {embeddings.shape}, expected ({len(texts)}, {self.dim})"
            )
        if not np.all(np.isfinite(embeddings)):
            raise ScopeError("embeddings contain NaN or infinite values")
        if benchmarks is not None and len(benchmarks) != len(texts):
            raise ScopeError("benchmarks must have one entry per text")
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise ScopeError("history questions must be non-empty strings")
        with self._lock:
            ids: list[int] = []
            new_rows: list[int] = []
            for i, t in enumerate(texts):
                key = t.strip()
                qid = self._text_ids.get(key)
                if qid is None:
                    qid = self._n + len(new_rows)
                    self._text_ids[key] = qid
                    self._texts.append(key)
                    self._benchmarks.append(benchmarks[i] if benchmarks is not None else None)
                    new_rows.append(i)
                ids.append(qid)
            if new_rows:
                vecs = embeddings[new_rows]
                vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
                self._grow(len(new_rows))
                self._emb[self._n : self._n + len(new_rows)] = vecs
                self._n += len(new_rows)
                self._index.add(vecs)
            return ids

    def _grow(self, extra: int) -> None:
        need = self._n + extra
        if need > len(self._emb):
            cap = max(need, 2 * len(self._emb), 1024)
            grown = np.zeros((cap, self.dim), dtype=np.float32)
            grown[: self._n] = self._emb[: self._n]
            self._emb = grown

    def add_outcomes(self, question_id: int, outcomes: Iterable[Outcome | Mapping[str, Any]]) -> None:
        """Record outcomes for a question already in the history."""
        outs = [o if isinstance(o, Outcome) else Outcome.create(**dict(o)) for o in outcomes]
        with self._lock:
            if not 0 <= question_id < self._n:
                raise ScopeError(f"no question with id {question_id} (history has {self._n})")
            for o in outs:
                self._columns.setdefault(o.model, ModelColumn()).add(
                    question_id, o.correct, o.output_tokens
                )
                self._records.append(OutcomeRecord(question_id, o))

    def add(
        self,
        text: str,
        embedding: np.ndarray,
        outcomes: Iterable[Outcome | Mapping[str, Any]] = (),
        benchmark: str | None = None,
    ) -> int:
        """Add one question (if new) and its outcomes; returns its id."""
        qid = self.add_questions([text], np.asarray(embedding).reshape(1, -1), [benchmark])[0]
        self.add_outcomes(qid, outcomes)
        return qid

    # ---------------------------------------------------------------- search
    def search(self, query_embs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Plain nearest questions, ignoring outcomes: (similarities, ids), each (n, k)."""
        return self._index.search(self._as_queries(query_embs), k)

    def _as_queries(self, query_embs: np.ndarray) -> np.ndarray:
        q = np.asarray(query_embs, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.shape[1] != self.dim:
            raise ScopeError(f"query embedding has dimension {q.shape[1]}, the history uses {self.dim}")
        return q

    def anchors(
        self, query_embs: np.ndarray, models: Sequence[str], k: int, exclude_ids: np.ndarray | None = None
    ) -> Anchors:
        """For each query and model, the k most similar questions that model has outcomes for.

        One shared index search serves all models; a model whose outcomes cover too few of the
        shared neighbours (e.g. 1% of the questions) gets an exact search over its own questions.
        ``exclude_ids`` (n_queries,) drops one question per query (leave-one-out evaluation).
        """
        if k <= 0:
            raise ScopeError(f"k must be positive, got {k}")
        q = self._as_queries(query_embs)
        n_q, n_m = len(q), len(models)
        ids = np.full((n_q, n_m, k), -1, dtype=np.int64)
        sims = np.zeros((n_q, n_m, k), dtype=np.float32)
        scores = np.full((n_q, n_m, k), np.nan, dtype=np.float32)
        tokens = np.full((n_q, n_m, k), np.nan, dtype=np.float32)
        mask = np.zeros((n_q, n_m, k), dtype=bool)
        if self._n == 0 or n_q == 0:
            return Anchors(tuple(models), ids, sims, scores, tokens, mask)
        with self._lock:
            columns = [self._column(m) for m in models]
            extra = 0 if exclude_ids is None else 1
            pool = min(self._n, max(4 * k, 64) + extra)
            g_sims, g_ids = self._index.search(q, pool)
            if exclude_ids is not None:
                g_ids = np.where(g_ids == np.asarray(exclude_ids)[:, None], -1, g_ids)
            for j, col in enumerate(columns):
                arrays = col.arrays()
                coverage = len(arrays.ids) / self._n
                if pool >= k and coverage * pool >= 2 * k:
                    member, pos = col.member(g_ids)
                    order = np.argsort(~member, axis=1, kind="stable")[:, :k]
                    take = np.take_along_axis(member, order, axis=1)
                    sel_ids = np.take_along_axis(g_ids, order, axis=1)
                    sel_sims = np.take_along_axis(g_sims, order, axis=1)
                    sel_pos = np.take_along_axis(pos, order, axis=1)
                    short = take.sum(axis=1) < min(k, len(arrays.ids) - extra)
                else:
                    take = sel_ids = sel_sims = sel_pos = None
                    short = np.ones(n_q, dtype=bool)
                if short.any():
                    e_sims, e_ids, e_pos, e_take = self._exact_model_search(
                        q[short], arrays, k, None if exclude_ids is None else np.asarray(exclude_ids)[short]
                    )
                    if take is None:
                        take, sel_ids, sel_sims, sel_pos = e_take, e_ids, e_sims, e_pos
                    else:
                        take[short], sel_ids[short], sel_sims[short], sel_pos[short] = e_take, e_ids, e_sims, e_pos
                kk = take.shape[1]
                mask[:, j, :kk] = take
                ids[:, j, :kk] = np.where(take, sel_ids, -1)
                sims[:, j, :kk] = np.where(take, sel_sims, 0.0)
                scores[:, j, :kk] = np.where(take, arrays.scores[sel_pos] if len(arrays.ids) else np.nan, np.nan)
                tokens[:, j, :kk] = np.where(take, arrays.tokens[sel_pos] if len(arrays.ids) else np.nan, np.nan)
        return Anchors(tuple(models), ids, sims, scores, tokens, mask)

    def _exact_model_search(
        self, q: np.ndarray, arrays: ModelArrays, k: int, exclude: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Brute force over one model's questions: (sims, ids, positions, valid), each (n, k)."""
        n = len(q)
        m = len(arrays.ids)
        out = (
            np.zeros((n, k), np.float32),
            np.full((n, k), -1, np.int64),
            np.zeros((n, k), np.int64),
            np.zeros((n, k), bool),
        )
        if m == 0:
            return out
        s = q @ self._emb[arrays.ids].T  # (n, m)
        if exclude is not None:
            s = np.where(arrays.ids[None, :] == exclude[:, None], -np.inf, s)
        kk = min(k, m)
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < m else np.tile(np.arange(m), (n, 1))
        top_s = np.take_along_axis(s, top, axis=1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        pos = np.take_along_axis(top, order, axis=1)
        sv = np.take_along_axis(top_s, order, axis=1)
        valid = np.isfinite(sv)
        out[0][:, :kk] = np.where(valid, sv, 0.0)
        out[1][:, :kk] = np.where(valid, arrays.ids[pos], -1)
        out[2][:, :kk] = pos
        out[3][:, :kk] = valid
        return out

    # ---------------------------------------------------------------- summaries
    def model_stats(self, model: str) -> dict[str, float]:
        """Overall accuracy, outcome count and median output tokens (NaN if unknown) of a model."""
        a = self.model_arrays(model)
        toks = a.tokens[np.isfinite(a.tokens)]
        return {
            "accuracy": float(a.scores.mean()) if len(a.scores) else float("nan"),
            "n_outcomes": float(len(a.ids)),
            "median_output_tokens": float(np.median(toks)) if len(toks) else float("nan"),
        }

    def info(self) -> dict[str, Any]:
        """A JSON-friendly description (what ``scope history info`` prints)."""
        return {
            "questions": self._n,
            "dim": self.dim,
            "embedder": self.embedder_name,
            "outcomes": len(self._records),
            "models": {m: self.model_stats(m) for m in self.models},
            "cards": sorted(self.cards),
        }

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write to a directory atomically (see ``scope_shared.history.store``)."""
        from scope_shared.history.store import save_history

        with self._lock:
            save_history(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> "History":
        """Load a directory written by ``save``; raises `HistoryStoreError` if missing or corrupt."""
        from scope_shared.history.store import load_history

        return load_history(Path(path))
