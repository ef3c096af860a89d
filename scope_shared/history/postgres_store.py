"""A `History` shared by many processes and machines through PostgreSQL (``History.connect(url)``).

Each process keeps its own in-memory history (and faiss index), built from a snapshot of the
database when it connects, and follows new rows: a background thread LISTENs for the
notification every write sends on commit, and also polls every ``poll_s`` seconds in case one is
missed, so an outcome one replica records reaches every other within milliseconds (a second at
worst). ``fresh_reads=True`` also catches up before every anchor search (one small query), so a
replica's very next decision sees everything committed before it.

A write (``add``, ``add_questions``, ``add_outcomes``, ``add_outcome_arrays``, setting a card)
happens in one transaction that locks the history's counter row: the replica first catches up to
the database, then applies the write to its own history with the ordinary `History` methods (so
validation and id assignment are exactly the embedded store's), then stores the new rows and
commits. If the database refuses, the local history is rebuilt from the database, so it never
keeps rows the fleet does not have.

``save(path)`` writes the local snapshot as an ordinary history directory (the export);
`scope_shared.history.postgres_transfer` moves directories in and out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.errors import ScopeError, SharedStoreError
from scope_shared.history import postgres_sql as sql
from scope_shared.history.anchors import Anchors
from scope_shared.history.history import History
from scope_shared.postgres import Session, Timeouts, connect, describe, ensure_schema, translate_errors

log = logging.getLogger(__name__)
T = TypeVar("T")


class SharedCards(dict):
    """The history's model cards; setting or deleting one writes it through to the database."""

    def __init__(self, owner: "PostgresHistory", cards: Mapping[str, ModelCard] = ()) -> None:
        super().__init__(cards)
        self._owner = owner

    def __setitem__(self, name: str, card: ModelCard) -> None:
        self.update({name: card})

    def update(self, other: Any = (), **more: ModelCard) -> None:  # type: ignore[override]
        items = {**dict(other), **more}
        for name, card in items.items():
            if not isinstance(card, ModelCard) or card.name != name:
                raise ScopeError(f"cards[{name!r}] must be the ModelCard named {name!r}")
        self._owner._write_cards(items, ())
        for name, card in items.items():
            dict.__setitem__(self, name, card)

    def __delitem__(self, name: str) -> None:
        self._owner._write_cards({}, (name,))
        dict.__delitem__(self, name)


class PostgresHistory(History):
    """A named history in PostgreSQL, mirrored in memory; see the module docstring."""

    def __init__(
        self,
        url: str,
        name: str = "default",
        *,
        dim: int | None = None,
        embedder_name: str | None = None,
        index: str | Mapping[str, Any] | None = None,
        follow: bool = True,
        fresh_reads: bool = False,
        poll_s: float = 1.0,
        timeouts: Timeouts | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ScopeError(f"a shared history needs a non-empty name, got {name!r}")
        if isinstance(poll_s, bool) or not isinstance(poll_s, (int, float)) or not poll_s > 0:
            raise ScopeError(f"poll_s must be a positive number of seconds, got {poll_s!r}")
        self.url, self.name = url, name
        self.fresh_reads, self.poll_s = fresh_reads, float(poll_s)
        self._session = Session(url, timeouts)
        self._sync_lock = threading.RLock()
        self._local = threading.local()  # .depth > 0 while this thread applies rows to the local history
        self._cards_version = -1
        self._n_replaced = 0  # replacements of a call's feedback applied here
        self._changed = threading.Condition()
        self._stop = threading.Event()
        ensure_schema(self._session.connection(), "history", sql.VERSION, sql.DDL)
        meta = self._session.run(f"opening history {name!r}", lambda c: self._open(c, dim, embedder_name, index))
        self._config = meta
        super().__init__(meta["dim"], meta["embedder"], index=meta["index"])
        self.sync()
        self._follower: threading.Thread | None = None
        if follow:
            self._follower = threading.Thread(target=self._follow, name=f"scope-history-{name}", daemon=True)
            self._follower.start()

    def _open(self, conn: Any, dim: int | None, embedder: str | None, index: Any) -> dict[str, Any]:
        row = conn.execute(
            "SELECT dim, embedder, index_spec FROM scope_histories WHERE name = %s", (self.name,)
        ).fetchone()
        if row is None:
            if dim is None:
                raise SharedStoreError(
                    f"no history named {self.name!r} at {describe(self.url)}: pass dim= (and embedder_name=) "
                    "to create it, or import a directory (scope history import)"
                )
            spec = dict(index) if isinstance(index, Mapping) else index
            conn.execute(
                "INSERT INTO scope_histories (name, dim, embedder, index_spec) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (self.name, int(dim), embedder, json.dumps(spec)),
            )
            row = conn.execute(
                "SELECT dim, embedder, index_spec FROM scope_histories WHERE name = %s", (self.name,)
            ).fetchone()
        for what, given, stored in (("dim", dim, row[0]), ("embedder", embedder, row[1])):
            if given is not None and given != stored:
                raise SharedStoreError(
                    f"history {self.name!r} at {describe(self.url)} has {what} {stored!r}, not {given!r}"
                )
        return {"dim": row[0], "embedder": row[1], "index": row[2]}

    @property
    def _applying(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @contextlib.contextmanager
    def _applying_here(self) -> Iterator[None]:
        """Mark this thread as applying (History methods it calls then skip the database)."""
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1

    def __repr__(self) -> str:
        return f"PostgresHistory(name={self.name!r}, questions={len(self)}, at={describe(self.url)!r})"

    # ---------------------------------------------------------------- cards
    @property  # type: ignore[override]
    def cards(self) -> SharedCards:
        return self.__dict__["_cards"]

    @cards.setter
    def cards(self, value: Mapping[str, ModelCard]) -> None:
        if "_cards" not in self.__dict__ or self._applying:  # History.__init__ / applying the database's
            self.__dict__["_cards"] = SharedCards(self, value)
        else:
            self.cards.update(value)

    def _write_cards(self, upsert: Mapping[str, ModelCard], delete: tuple[str, ...]) -> None:
        def work(conn: Any) -> None:
            conn.execute(sql.LOCK_COUNTERS, (self.name,))
            for name, card in upsert.items():
                conn.execute(sql.UPSERT_CARD, (self.name, name, json.dumps(card.model_dump())))
            for name in delete:
                conn.execute(sql.DELETE_CARD, (self.name, name))
            conn.execute(sql.BUMP_CARDS, (self.name,))
            conn.execute(sql.NOTIFY, (sql.CHANNEL, self.name))

        if not self._applying:
            self._session.run(f"writing cards of history {self.name!r}", work)

    # ---------------------------------------------------------------- following the database
    def sync(self) -> int:
        """Apply every row committed since the last sync; returns how many outcomes arrived."""
        with self._sync_lock:
            before = self.n_records
            self._session.run(f"reading history {self.name!r}", lambda c: self._catch_up(c, c.execute(sql.COUNTERS, (self.name,)).fetchone()))
            return self.n_records - before

    def _catch_up(self, conn: Any, counters: tuple[int, int, int, int] | None) -> None:
        """Apply rows up to ``counters`` (read from, or locked in, the database); sync lock held."""
        if counters is None:
            raise SharedStoreError(f"history {self.name!r} no longer exists at {describe(self.url)}")
        n_q, n_o, n_r, cards_version = counters
        if n_q < len(self) or n_o < self.n_records or n_r < self._n_replaced:
            raise SharedStoreError(
                f"history {self.name!r} at {describe(self.url)} has fewer rows than this process already "
                "read (was it deleted or restored from an older backup?); connect again"
            )
        if (n_q, n_o, n_r, cards_version) == (len(self), self.n_records, self._n_replaced, self._cards_version):
            return
        qrows = conn.execute(sql.QUESTIONS_FROM, (self.name, len(self), n_q)).fetchall() if n_q > len(self) else []
        orows = conn.execute(sql.OUTCOMES_FROM, (self.name, self.n_records, n_o)).fetchall() if n_o > self.n_records else []
        reps = conn.execute(sql.REPLACEMENTS_FROM, (self.name, self._n_replaced, n_r)).fetchall() if n_r > self._n_replaced else []
        cards = None
        if cards_version != self._cards_version:
            cards = {c["name"]: ModelCard(**c) for (c,) in conn.execute(sql.CARDS, (self.name,)).fetchall()}
        self._apply(qrows, orows, reps, cards)
        self._cards_version = cards_version

    def _apply(self, qrows: list[Any], orows: list[Any], reps: list[Any], cards: dict[str, ModelCard] | None) -> None:
        with self._lock, self._applying_here():
            if qrows:
                start = len(self)
                embs = np.frombuffer(b"".join(bytes(r[2]) for r in qrows), dtype="<f4").reshape(len(qrows), self.dim)
                ids = History.add_questions(self, [r[0] for r in qrows], embs, [r[1] for r in qrows])
                if ids != list(range(start, start + len(qrows))):
                    raise SharedStoreError(f"history {self.name!r}: question rows out of order; connect again")
            if orows:
                col = list(zip(*orows))
                models, sources = list(dict.fromkeys(col[1])), list(dict.fromkeys(col[6]))  # first-seen order
                m_code, s_code = {m: i for i, m in enumerate(models)}, {s: i for i, s in enumerate(sources)}

                def num(i: int) -> np.ndarray:
                    return np.array([np.nan if v is None else v for v in col[i]], dtype=np.float64)

                History.add_outcome_arrays(
                    self, np.array(col[0], np.int64), models, num(2), num(3),
                    input_tokens=num(4), latency_s=num(5), source=sources,
                    model_codes=np.array([m_code[m] for m in col[1]], np.int64),
                    source_codes=np.array([s_code[s] for s in col[6]], np.int64),
                )
            for row, correct in reps:  # a call's later feedback replaced its score
                record = self._log.record(row)
                old = self._log.set_correct(row, correct)
                self._columns[record.outcome.model].adjust(record.question_id, correct - old)
                self._n_replaced += 1
            if cards is not None:
                self.cards = cards
        with self._changed:
            self._changed.notify_all()

    def _follow(self) -> None:
        """Background thread: wait for a notification (or ``poll_s``), then sync; survive outages."""
        conn, failing = None, False
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = connect(self.url, self._session.timeouts)
                    conn.execute(f"LISTEN {sql.CHANNEL}")
                with translate_errors(f"listening for changes to history {self.name!r}"):
                    for _ in conn.notifies(timeout=self.poll_s, stop_after=1):
                        pass
                if not self._stop.is_set():
                    self.sync()
                if failing:
                    log.warning("history %r: following the database again", self.name)
                failing = False
            except Exception as exc:  # keep following: the server may come back
                (log.debug if failing else log.warning)("history %r: following the database failed: %s", self.name, exc)
                failing = True
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(self.poll_s)
        if conn is not None:
            conn.close()

    def wait_for_outcomes(self, n: int, timeout_s: float) -> bool:
        """Block until this replica holds at least ``n`` outcomes (or ``timeout_s`` passes)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self.n_records < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, self.poll_s))
        return True

    def close(self) -> None:
        """Stop following and close the connections (the in-memory history stays readable)."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=self.poll_s + 5)
        self._session.close()

    def __enter__(self) -> "PostgresHistory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- reading
    def anchors(self, query_embs: np.ndarray, models: Any, k: int, exclude_ids: np.ndarray | None = None) -> Anchors:
        if self.fresh_reads:
            self.sync()
        return super().anchors(query_embs, models, k, exclude_ids)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "shared": {"name": self.name, "at": describe(self.url)}}

    # ---------------------------------------------------------------- writing
    def _write(
        self, doing: str, apply: Callable[[], T], texts: Any = (), embeddings: Any = None, call_id: str | None = None
    ) -> T:
        """One write: lock the counters, catch up, ``apply()`` locally, store the new rows, commit.

        ``call_id``: the routed call the outcome is feedback on; if the fleet already holds feedback
        on it (recorded here or by another replica), ``apply`` replaces that score."""
        if self._applying:  # a History method calling another (add -> add_questions): already inside
            return apply()

        def work(conn: Any) -> T:
            self._catch_up(conn, conn.execute(sql.LOCK_COUNTERS, (self.name,)).fetchone())
            if call_id and self._calls.row(call_id) is None:
                hit = conn.execute(sql.CALL_ROW, (self.name, call_id)).fetchone()
                if hit is not None:
                    self._calls.remember(call_id, hit[0])
            before.extend((len(self), self.n_records))
            with self._lock, self._applying_here():
                result = apply()
                applied.append(True)
            self._store_rows(conn, before[0], before[1], texts, embeddings, call_id)
            return result

        with self._sync_lock:
            before: list[int] = []
            applied: list[bool] = []
            try:
                return self._session.run(f"{doing} history {self.name!r}", work)
            except BaseException:
                if applied or (before and (len(self), self.n_records) != tuple(before)):  # not committed
                    self._rebuild()
                raise

    def _store_rows(self, conn: Any, n_q: int, n_o: int, texts: Any, embeddings: Any, call_id: str | None) -> None:
        if len(self) > n_q:
            first = {}
            for i, t in enumerate(texts):
                first.setdefault(t.strip(), i)
            vecs = np.asarray(embeddings, dtype="<f4")
            with conn.cursor().copy(sql.COPY_QUESTIONS) as copy:
                for qid in range(n_q, len(self)):
                    v = vecs[first[self.text(qid)]]
                    copy.write_row((self.name, qid, self.text(qid), self.benchmark(qid), v.tobytes()))
        if self.n_records > n_o:
            with conn.cursor().copy(sql.COPY_OUTCOMES) as copy:
                for seq, row in enumerate(self.outcome_log.rows(n_o), start=n_o):
                    copy.write_row((self.name, seq, row["q"], row["model"], row["correct"], row.get("output_tokens"),
                                    row.get("input_tokens"), row.get("latency_s"), row["source"]))
        row = self._calls.row(call_id)
        if row is not None and row >= n_o:  # the call's first feedback (here): a new row holds it
            conn.execute(sql.FREE_CALL, (self.name, call_id))
            conn.execute(sql.SET_CALL, (call_id, self.name, row))
        elif row is not None:  # its earlier feedback's score was replaced
            correct = float(self._log.column("correct")[row])
            conn.execute(sql.REPLACE, (correct, self.name, row))
            conn.execute(sql.ADD_REPLACEMENT, (self.name, self._n_replaced, row, correct))
            self._n_replaced += 1
        conn.execute(sql.SET_COUNTERS, (len(self), self.n_records, self._n_replaced, self.name))
        conn.execute(sql.NOTIFY, (sql.CHANNEL, self.name))

    def _rebuild(self) -> None:
        """After a failed write: forget local state and reload it from the database."""
        with self._sync_lock, self._lock:
            self.__dict__.pop("_cards", None)
            History.__init__(self, self._config["dim"], self._config["embedder"], index=self._config["index"])
            self._cards_version, self._n_replaced = -1, 0
        try:
            self.sync()
        except SharedStoreError as exc:
            log.warning("history %r: could not reload after a failed write: %s", self.name, exc)

    def add_questions(self, texts: Any, embeddings: np.ndarray, benchmarks: Any = None) -> list[int]:
        vecs = _unit_rows(embeddings, self.dim)
        return self._write("adding questions to", lambda: History.add_questions(self, texts, vecs, benchmarks),
                           list(texts), vecs)

    def add_outcomes(self, question_id: int, outcomes: Any) -> None:
        outs = list(outcomes)
        self._write("adding outcomes to", lambda: History.add_outcomes(self, question_id, outs))

    def add_outcome_arrays(self, *args: Any, **kwargs: Any) -> None:
        self._write("adding outcomes to", lambda: History.add_outcome_arrays(self, *args, **kwargs))

    def add(
        self, text: str, embedding: np.ndarray, outcomes: Any = (), benchmark: str | None = None,
        call_id: str | None = None,
    ) -> int:
        outs = list(outcomes)
        vec = _unit_rows(np.asarray(embedding).reshape(1, -1), self.dim)
        return self._write("recording an outcome in", lambda: History.add(self, text, vec, outs, benchmark, call_id),
                           [text] if isinstance(text, str) else [], vec, call_id)

    def attach_log(self, path: str | Path) -> Any:
        raise ScopeError(
            f"history {self.name!r} is shared through PostgreSQL: every outcome is committed to the database, "
            "so it takes no feedback log"
        )


def _unit_rows(embeddings: Any, dim: int) -> Any:
    """Rows scaled to unit length as `History.add_questions` scales them, so the writer and every
    replica (which re-scale what the database holds) index bit-identical vectors. Input that
    `History` would reject is passed through for it to reject."""
    try:
        e = np.asarray(embeddings, dtype=np.float32)
    except (TypeError, ValueError):
        return embeddings
    if e.ndim != 2 or e.shape[1] != dim or not np.all(np.isfinite(e)):
        return embeddings
    return (e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)).astype("<f4")
