"""The history: questions, their embeddings (faiss-indexed), and per-model outcomes.

It is the router's memory. It grows incrementally (new questions, a new model's outcomes on existing
questions, live feedback) and answers "the k most similar questions that model M has outcomes for".
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scope_shared.cards import ModelCard, Outcome
from scope_shared.errors import FeedbackError, HistoryDataError, HistoryStoreError, InvalidQueryError, UnknownModelError
from scope_shared.history.anchors import Anchors
from scope_shared.history.columns import ModelArrays, ModelColumn
from scope_shared.history.feedback_calls import FeedbackCalls
from scope_shared.history.index import VectorIndex
from scope_shared.history.membership import Membership
from scope_shared.history.records import OutcomeLog, OutcomeRecord, RecordsView
from scope_shared.history.search import anchors as search_anchors
from scope_shared.history.validation import (
    check_benchmarks,
    check_dim,
    check_embedding,
    check_embeddings,
    check_ids,
    check_k,
    check_outcome_arrays,
    check_outcomes,
    check_question_id,
    check_texts,
    query_array,
)

if TYPE_CHECKING:
    from scope_shared.history.feedback_log import ReplayReport



class History:
    """Questions, embeddings and outcomes; thread-safe for concurrent readers and writers."""

    def __init__(
        self, dim: int, embedder_name: str | None = None, index: str | Mapping[str, Any] | None = None
    ) -> None:
        """``index``: the vector index kind: ``None``/``"auto"`` (exact float32 search up to 50,000
        questions, then 8-bit IVF), ``"flat"`` (always exact), ``"ivf-sq8"``, ``"ivf-pq"``, ... or a
        mapping of `VectorIndex` arguments (see `scope_shared.history.index`)."""
        self.dim = dim = check_dim(dim)
        self.embedder_name = embedder_name
        self.cards: dict[str, ModelCard] = {}
        self._texts: list[str] = []
        self._benchmarks: list[str | None] = []
        self._text_ids: dict[str, int] = {}
        self._n = 0
        self._index = VectorIndex.from_config(dim, dict(index) if isinstance(index, Mapping) else index)
        self._columns: dict[str, ModelColumn] = {}
        self._members = Membership()  # which models answered each question (slot = position in _columns)
        self._log = OutcomeLog()
        self._lock = threading.RLock()
        self._feedback: Any = None  # a FeedbackLog once attach_log() was called
        self._calls = FeedbackCalls()
        #: per feedback-log segment, the last record sequence number folded into this history
        #: (see `scope_shared.history.feedback_log`)
        self.feedback_applied: dict[str, int] = {}
        self._saved_as: dict[str, str] = {}  # store directory -> save id it holds (store.py)
        #: fits that estimators derive from this history (e.g. the panel's), keyed by the estimator's
        #: settings, shared by every router over it; each estimator refreshes its own when outcomes change
        self.fit_cache: dict[Any, Any] = {}

    @classmethod
    def connect(cls, url: str, name: str = "default", **settings: Any) -> History:
        """A history shared by every process that connects to it, kept in PostgreSQL.

        ``History.connect("postgresql://user@host/db", dim=384, embedder_name=...)`` creates it on
        first use; each process mirrors it in memory and follows new rows. See
        `scope_shared.history.postgres_store.PostgresHistory` for the settings.
        """
        from scope_shared.history.postgres_store import PostgresHistory

        return PostgresHistory(url, name, **settings)

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
        return RecordsView(self._log)

    @property
    def n_records(self) -> int:
        """How many outcomes were ever added (``len(records)`` without building them)."""
        return len(self._log)

    @property
    def outcome_log(self) -> OutcomeLog:
        """The columnar outcome log (read it; write through `add_outcomes` / `add_outcome_arrays`)."""
        return self._log

    @property
    def index(self) -> VectorIndex:
        """The vector index (holds the question embeddings)."""
        return self._index

    @property
    def embeddings(self) -> np.ndarray:
        """(n_questions, dim) unit vectors, read-only (a decoded copy for quantised indexes)."""
        view = self._index.all_vectors()
        view.flags.writeable = False
        return view

    def vectors(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """Embeddings of some questions, without materialising all of them."""
        return self._index.vectors(check_ids(ids, self._n))

    def text(self, qid: int) -> str:
        return self._texts[check_question_id(qid, self._n)]

    def benchmark(self, qid: int) -> str | None:
        return self._benchmarks[check_question_id(qid, self._n)]

    @property
    def benchmarks(self) -> list[str | None]:
        return list(self._benchmarks)

    def question_id(self, text: str) -> int | None:
        """Id of a question already in the history, by exact text (stripped)."""
        if not isinstance(text, str):
            raise InvalidQueryError(f"question text must be a string, got {type(text).__name__}")
        return self._text_ids.get(text.strip())

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and text.strip() in self._text_ids

    def model_arrays(self, model: str) -> ModelArrays:
        """A model's outcomes as sorted arrays (question ids, mean scores, tokens), read under the
        history's lock: reading merges the outcomes written since, which a writer may be adding to."""
        with self._lock:
            return self._column(model).arrays()

    def n_outcomes(self, model: str) -> int:
        with self._lock:  # counting merges pending outcomes too (see `model_arrays`)
            return len(self._column(model))

    def score_matrix(self, models: Sequence[str]) -> np.ndarray:
        """(n_questions, len(models)) mean scores, NaN where a model has no outcome: one state of the
        history, read under its lock (live feedback may add questions and outcomes meanwhile)."""
        with self._lock:
            scores = np.full((self._n, len(models)), np.nan, np.float32)
            for j, m in enumerate(models):
                arr = self._column(m).arrays()
                scores[arr.ids, j] = arr.scores
            return scores

    def answered(self, qids: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Booleans of shape ``qids.shape + (len(slots),)``: whether the model in each slot (its
        position in `models`) has an outcome for each question; for searches over many models at once."""
        return self._members.answered(qids, slots)

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """The lock every writer holds (re-entrant): hold it to read the index, outcomes and
        memberships as one state, as the anchor search does."""
        return self._lock

    def _column(self, model: str) -> ModelColumn:
        try:
            return self._columns[model]
        except (KeyError, TypeError):
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
        texts = check_texts(texts)
        embeddings = check_embeddings(embeddings, len(texts), self.dim)
        benchmarks = check_benchmarks(benchmarks, len(texts))
        with self._lock:
            ids: list[int] = []
            new_rows: list[int] = []
            n_texts = len(self._texts)
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
                try:
                    self._index.add(vecs)
                except BaseException:  # e.g. index training failed: forget the new texts again
                    for t in self._texts[n_texts:]:
                        del self._text_ids[t]
                    del self._texts[n_texts:], self._benchmarks[n_texts:]
                    raise
                self._n += len(new_rows)
                self._members.fit_questions(self._n)
            return ids

    def add_outcomes(self, question_id: int, outcomes: Iterable[Outcome | Mapping[str, Any]]) -> None:
        """Record outcomes for a question already in the history."""
        outs = check_outcomes(outcomes)
        with self._lock:
            question_id = check_question_id(question_id, self._n)
            for o in outs:
                self._column_for_write(o.model).add(question_id, o.correct, o.output_tokens)
                self._set_bits(np.array([question_id]), o.model)
                self._log.append(question_id, o)

    def add_outcome_arrays(
        self,
        question_ids: np.ndarray | Sequence[int],
        model: str | Sequence[str],
        correct: np.ndarray | Sequence[float],
        output_tokens: np.ndarray | Sequence[float] | None = None,
        *,
        input_tokens: np.ndarray | Sequence[float] | None = None,
        latency_s: np.ndarray | Sequence[float] | None = None,
        source: str | Sequence[str] = "benchmark",
        model_codes: np.ndarray | None = None,
        source_codes: np.ndarray | None = None,
    ) -> None:
        """Bulk form of `add_outcomes`: one row per outcome, as arrays (NaN = unknown number).

        ``model`` and ``source`` are one name for all rows or one per row; or, with
        ``model_codes`` / ``source_codes`` (integer arrays), tables of names those codes index.
        Validated as a whole (same rules as `Outcome`); nothing is added if any row is bad.
        """
        rows = check_outcome_arrays(
            question_ids, model, correct, output_tokens, input_tokens=input_tokens, latency_s=latency_s,
            source=source, model_codes=model_codes, source_codes=source_codes,
        )
        qids, corr, models, m_idx = rows.qids, rows.correct, rows.models, rows.model_idx
        n = len(qids)
        with self._lock:
            if n and (qids.min() < 0 or qids.max() >= self._n):
                raise HistoryDataError(f"question ids out of range (history has {self._n})")
            for i, m in enumerate(models):
                sel = np.flatnonzero(m_idx == i) if len(models) > 1 else slice(None)
                if len(models) > 1 and len(sel) == 0:
                    continue
                self._column_for_write(m).add_many(qids[sel], corr[sel], rows.output_tokens[sel])
                self._set_bits(qids[sel], m)
            m_codes = np.array([self._log.model_code(m) for m in models], dtype=np.int64)
            s_codes = np.array([self._log.source_code(x) for x in rows.sources], dtype=np.int64)
            self._log.append_columns(
                qid=qids, model=m_codes[m_idx], correct=corr, output_tokens=rows.output_tokens,
                source=s_codes[rows.source_idx], input_tokens=rows.input_tokens, latency_s=rows.latency_s,
            )

    def _column_for_write(self, model: str) -> ModelColumn:
        col = self._columns.get(model)
        if col is None:
            col = self._columns[model] = ModelColumn()
            self._members.fit_models(len(self._columns))
        return col

    def _set_bits(self, qids: np.ndarray, model: str) -> None:
        self._members.mark(qids, list(self._columns).index(model))

    def add(
        self,
        text: str,
        embedding: np.ndarray,
        outcomes: Iterable[Outcome | Mapping[str, Any]] = (),
        benchmark: str | None = None,
        call_id: str | None = None,
    ) -> int:
        """Add one question (if new) and its outcomes; returns its id.

        With a feedback log attached (`attach_log`), the record is written ahead to the log and
        fsynced before the history changes, so it survives a crash once this returns.
        ``call_id``: the routed call one outcome is feedback on; the same call's later feedback
        replaces it (`scope_shared.history.feedback_calls`).
        """
        outs = check_outcomes(outcomes)
        if call_id is not None and not isinstance(call_id, str):
            raise FeedbackError(f"call_id must be a string, got {type(call_id).__name__}")
        if self._feedback is None:
            return self._add_unlogged(text, embedding, outs, benchmark, call_id)
        check_texts([text])
        emb = check_embedding(embedding, self.dim)
        check_benchmarks([benchmark], 1)
        with self._lock:  # log order == apply order, so each segment's mark is a true prefix
            replaces = self._calls.previous(call_id, self._log, outs[0].model if len(outs) == 1 else None)
            segment, seq = self._feedback.append(text.strip(), emb, outs, benchmark, call_id=call_id, replaces=replaces)
            qid = self._add_unlogged(text, emb, outs, benchmark, call_id)
            self.feedback_applied[segment] = seq
            return qid

    def _add_unlogged(
        self, text: str, embedding: np.ndarray, outs: list[Outcome], benchmark: str | None,
        call_id: str | None = None, replaces: float | None = None,
    ) -> int:
        with self._lock:
            qid = self.add_questions([text], np.asarray(embedding).reshape(1, -1), [benchmark])[0]
            if not self._calls.replace(self._log, self._columns, qid, outs, call_id, replaces):
                self.add_outcomes(qid, outs)
                if len(outs) == 1:
                    self._calls.remember(call_id, len(self._log) - 1)
            return qid

    def attach_log(self, path: str | Path) -> ReplayReport:
        """Replay a feedback log into this history, then write every later `add` to it first.

        Records this history already folded in (see ``feedback_applied``, kept by `save`) are not
        applied twice. Torn or corrupt records are skipped with a `FeedbackLogWarning`; the report
        counts them.
        """
        from scope_shared.history.feedback_log import FeedbackLog

        with self._lock:
            if self._feedback is not None:
                raise HistoryStoreError(f"a feedback log is already attached ({self._feedback.path})")
            log = FeedbackLog(path, self.dim)
            report, marks = log.replay(self, self.feedback_applied)
            self.feedback_applied.update(marks)
            self._feedback = log
            return report

    def detach_log(self) -> None:
        """Stop writing to the attached feedback log (and close it)."""
        with self._lock:
            if self._feedback is not None:
                self._feedback.close()
                self._feedback = None

    @property
    def feedback_log(self) -> Any:
        """The attached `FeedbackLog`, or None."""
        return self._feedback

    # ---------------------------------------------------------------- search
    def search(self, query_embs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Plain nearest questions, ignoring outcomes: (similarities, ids), each (n, k)."""
        q, k = self._as_queries(query_embs), check_k(k)
        with self._lock:  # faiss indexes are not safe to search while another thread adds
            return self._index.search(q, k)

    def _as_queries(self, query_embs: np.ndarray) -> np.ndarray:
        return query_array(query_embs, self.dim)

    def anchors(
        self, query_embs: np.ndarray, models: Sequence[str], k: int, exclude_ids: np.ndarray | None = None
    ) -> Anchors:
        """For each query and model, the k most similar questions that model has outcomes for.

        ``exclude_ids`` (n_queries,) drops one question per query (leave-one-out evaluation).
        See `scope_shared.history.search.anchors` for how.
        """
        return search_anchors(self, query_embs, models, k, exclude_ids)

    # ---------------------------------------------------------------- summaries
    def model_stats(self, model: str) -> dict[str, float]:
        """Overall accuracy, outcome count and median output tokens (NaN if unknown) of a model."""
        with self._lock:
            return self._column(model).stats()

    def info(self) -> dict[str, Any]:
        """A JSON-friendly description (what ``scope history info`` prints)."""
        return {
            "questions": self._n,
            "dim": self.dim,
            "embedder": self.embedder_name,
            "outcomes": len(self._log),
            "index": self._index.spec,
            "models": {m: self.model_stats(m) for m in self.models},
            "cards": sorted(self.cards),
        }

    def select_models(self, models: Iterable[str]) -> History:
        """A copy with every question (same ids, no re-embedding) but only ``models``' outcomes."""
        from scope_shared.history.subset import select_models

        with self._lock:
            return select_models(self, models)

    def drop_models(self, models: Iterable[str]) -> History:
        """A copy without ``models``' outcomes and cards (see `select_models`)."""
        drop = set(models)
        unknown = drop - set(self.models)
        if unknown:
            raise UnknownModelError(f"model {min(unknown)!r} has no outcomes in the history")
        return self.select_models([m for m in self.models if m not in drop])

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write to a directory atomically (see ``scope_shared.history.store``)."""
        from scope_shared.history.store import save_history

        with self._lock:
            save_history(self, path)

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Load a directory written by ``save``; raises `HistoryStoreError` if missing or corrupt."""
        from scope_shared.history.store import load_history

        return load_history(path)

