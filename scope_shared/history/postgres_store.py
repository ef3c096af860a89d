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

Rows read from the database are untrusted (another client, version or bug may have written them):
a row no `History` would hold (a NaN or wrong-size embedding, a score of NaN or 7, a card that is
not one) is left out, logged and listed in `skipped_rows`, and the replica goes on following;
writes and new connections keep working. A left-out question keeps its id with a placeholder (a
zero vector near no query, without outcomes); left-out outcome rows are remembered by sequence
number, so new rows are still numbered as the database counts them. Schema version 2 also refuses
such rows from any client (`postgres_sql`).

``save(path)`` writes the local snapshot as an ordinary history directory (the export);
`scope_shared.history.postgres_transfer` moves directories in and out. The SQL is in
`postgres_sql`; turning rows into `History` arguments and back is `postgres_rows`.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.errors import HistoryStoreError, InvalidCardError, ScopeError, SharedStoreError
from scope_shared.history import postgres_rows as rows
from scope_shared.history import postgres_sql as sql
from scope_shared.history.anchors import Anchors
from scope_shared.history.history import History
from scope_shared.postgres import (
    Session,
    Timeouts,
    connect,
    describe,
    ensure_schema,
    translate_errors,
)

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)
T = TypeVar("T")
#: left-out rows listed in `PostgresHistory.skipped_rows` (and logged one by one)
MAX_REPORTED = 100


class SharedCards(dict):
    """The history's model cards; setting or deleting one writes it through to the database."""

    def __init__(self, owner: PostgresHistory, cards: Mapping[str, ModelCard] = ()) -> None:
        super().__init__(cards)
        self._owner = owner

    def __setitem__(self, name: str, card: ModelCard) -> None:
        self.update({name: card})

    def update(self, other: Any = (), **more: ModelCard) -> None:  # type: ignore[override]
        items = {**dict(other), **more}
        for name, card in items.items():
            if not isinstance(card, ModelCard) or card.name != name:
                raise InvalidCardError(f"cards[{name!r}] must be the ModelCard named {name!r}")
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
            raise HistoryStoreError(f"a shared history needs a non-empty name, got {name!r}")
        if isinstance(poll_s, bool) or not isinstance(poll_s, (int, float)) or not poll_s > 0:
            raise HistoryStoreError(f"poll_s must be a positive number of seconds, got {poll_s!r}")
        self.url, self.name = url, name
        self.fresh_reads, self.poll_s = fresh_reads, float(poll_s)
        self._session = Session(url, timeouts)
        self._sync_lock = threading.RLock()
        self._local = threading.local()  # .depth > 0 while this thread applies rows to the local history
        self._cards_version = -1
        self._n_replaced = 0  # replacements of a call's feedback applied here
        self._skipped_seqs: list[int] = []  # database outcome rows left out here (sorted)
        self._placeholders: set[int] = set()  # question ids held by a placeholder
        #: rows of the database this replica left out, and why (the latest `MAX_REPORTED`)
        self.skipped_rows: list[str] = []
        self.n_skipped_rows = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        ensure_schema(self._session.connection(), "history", sql.VERSION, sql.DDL, sql.MIGRATIONS)
        meta = self._session.run(f"opening history {name!r}", lambda c: rows.open_settings(c, name, url, dim, embedder_name, index))
        self._config = meta
        super().__init__(meta["dim"], meta["embedder"], index=meta["index"])
        self.sync()
        self._follower: threading.Thread | None = None
        if follow:
            self._follower = threading.Thread(target=self._follow, name=f"scope-history-{name}", daemon=True)
            self._follower.start()

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

    @property
    def _rows_read(self) -> int:
        """Outcome rows of the database this replica has read (applied or left out)."""
        return self.n_records + len(self._skipped_seqs)

    def _local_row(self, seq: int) -> int | None:
        """The local outcome row of database row ``seq`` (None: left out here)."""
        i = bisect.bisect_left(self._skipped_seqs, seq)
        if i < len(self._skipped_seqs) and self._skipped_seqs[i] == seq:
            return None
        return seq - i

    def _db_seq(self, row: int) -> int:
        """The database sequence number of local outcome row ``row``."""
        seq = row
        while True:
            nxt = row + bisect.bisect_right(self._skipped_seqs, seq)
            if nxt == seq:
                return seq
            seq = nxt

    def _skip(self, what: str, why: str) -> None:
        self.n_skipped_rows += 1
        self.skipped_rows.append(f"{what}: {why}")
        del self.skipped_rows[:-MAX_REPORTED]
        if self.n_skipped_rows <= MAX_REPORTED:
            log.warning("history %r: left out %s: %s", self.name, what, why)

    def _catch_up(self, conn: Any, counters: tuple[int, int, int, int] | None) -> None:
        """Apply rows up to ``counters`` (read from, or locked in, the database); sync lock held."""
        if counters is None:
            raise SharedStoreError(f"history {self.name!r} no longer exists at {describe(self.url)}")
        n_q, n_o, n_r, cards_version = counters
        read = self._rows_read
        if n_q < len(self) or n_o < read or n_r < self._n_replaced:
            raise SharedStoreError(
                f"history {self.name!r} at {describe(self.url)} has fewer rows than this process already "
                "read (was it deleted or restored from an older backup?); connect again"
            )
        if (n_q, n_o, n_r, cards_version) == (len(self), read, self._n_replaced, self._cards_version):
            return
        qrows = conn.execute(sql.QUESTIONS_FROM, (self.name, len(self), n_q)).fetchall() if n_q > len(self) else []
        orows = conn.execute(sql.OUTCOMES_FROM, (self.name, read, n_o)).fetchall() if n_o > read else []
        reps = conn.execute(sql.REPLACEMENTS_FROM, (self.name, self._n_replaced, n_r)).fetchall() if n_r > self._n_replaced else []
        cards = conn.execute(sql.CARDS, (self.name,)).fetchall() if cards_version != self._cards_version else None
        self._apply(qrows, n_q, orows, n_o, reps, n_r, cards)
        self._cards_version = cards_version

    def _apply(self, qrows: list[Any], n_q: int, orows: list[Any], n_o: int, reps: list[Any], n_r: int,
               cards: list[Any] | None) -> None:
        with self._lock, self._applying_here():
            if n_q > len(self):
                start = len(self)
                texts, embs, benches, bad = rows.question_arrays(qrows, self.dim, start, n_q, self.name, self.__contains__)
                try:
                    ids = History.add_questions(self, texts, embs, benches)
                except ScopeError as exc:  # a rule the row checks missed: hold the whole batch by placeholders
                    bad = {qid: f"the batch was refused ({exc})" for qid in range(start, n_q)}
                    texts = [rows.PLACEHOLDER.format(qid=qid, name=self.name) for qid in range(start, n_q)]
                    ids = History.add_questions(self, texts, np.zeros((n_q - start, self.dim), np.float32))
                if ids != list(range(start, n_q)):
                    raise SharedStoreError(f"history {self.name!r}: question rows out of order; connect again")
                for qid, why in bad.items():
                    self._placeholders.add(qid)
                    self._skip(f"question {qid}", why)
            read = self._rows_read
            if n_o > read:
                kwargs, bad = rows.outcome_arrays(orows, read, n_o, len(self), self._placeholders)
                if kwargs is not None:
                    try:
                        History.add_outcome_arrays(self, **kwargs)
                    except ScopeError as exc:  # a rule the row checks missed: leave the batch out
                        bad = {seq: f"the batch was refused ({exc})" for seq in range(read, n_o)}
                for seq, why in bad.items():
                    self._skipped_seqs.append(seq)
                    self._skip(f"outcome row {seq}", why)
                self._skipped_seqs.sort()
            for seq, correct in reps:  # a call's later feedback replaced its score
                row = None if isinstance(seq, bool) or not isinstance(seq, int) else self._local_row(seq)
                if row is None or not 0 <= row < self.n_records:
                    self._skip(f"score replacement of outcome row {seq}", "that row is not held here")
                    continue
                if isinstance(correct, bool) or not isinstance(correct, (int, float)) or not 0 <= correct <= 1:
                    self._skip(f"score replacement of outcome row {seq}", f"correct={correct!r} is not in [0, 1]")
                    continue
                record = self._log.record(row)
                old = self._log.set_correct(row, correct)
                self._columns[record.outcome.model].adjust(record.question_id, correct - old)
            self._n_replaced = max(self._n_replaced, n_r)
            if cards is not None:
                objs, bad_cards = rows.card_objects(cards)
                for why in bad_cards:
                    self._skip("a card", why)
                self.cards = objs
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
            except Exception as exc:  # noqa: BLE001 - keep following: the server may come back
                (log.debug if failing else log.warning)("history %r: following the database failed: %s", self.name, exc)
                failing = True
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(self.poll_s)
        if conn is not None:
            conn.close()

    def wait_for_outcomes(self, n: int, timeout_s: float) -> bool:
        """Block until this replica has read at least ``n`` outcome rows of the database (or
        ``timeout_s`` passes); rows it left out as invalid count as read."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._rows_read < n:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- reading
    def anchors(self, query_embs: np.ndarray, models: Any, k: int, exclude_ids: np.ndarray | None = None) -> Anchors:
        if self.fresh_reads:
            self.sync()
        return super().anchors(query_embs, models, k, exclude_ids)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "shared": {"name": self.name, "at": describe(self.url), "skipped_rows": self.n_skipped_rows}}

    # ---------------------------------------------------------------- writing
    def _write(
        self, doing: str, apply: Callable[[], T], texts: Any = (), embeddings: Any = None, call_id: str | None = None,
        cards: Mapping[str, ModelCard] | None = None,
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
                local = None if hit is None else self._local_row(hit[0])
                if local is not None:
                    self._calls.remember(call_id, local)
            before.extend((len(self), self.n_records))
            with self._lock, self._applying_here():
                result = apply()
                applied.append(True)
            self._store_rows(conn, before[0], before[1], texts, embeddings, call_id)
            if cards:
                for name, card in cards.items():
                    conn.execute(sql.UPSERT_CARD, (self.name, name, json.dumps(card.model_dump())))
                conn.execute(sql.BUMP_CARDS, (self.name,))
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
            rows.copy_questions(conn, self.name, self, n_q, texts, embeddings)
        if self.n_records > n_o:
            rows.copy_outcomes(conn, self.name, self, n_o, self._db_seq(n_o))
        row = self._calls.row(call_id)
        if row is not None and row >= n_o:  # the call's first feedback (here): a new row holds it
            conn.execute(sql.FREE_CALL, (self.name, call_id))
            conn.execute(sql.SET_CALL, (call_id, self.name, self._db_seq(row)))
        elif row is not None:  # its earlier feedback's score was replaced
            correct = float(self._log.column("correct")[row])
            conn.execute(sql.REPLACE, (correct, self.name, self._db_seq(row)))
            conn.execute(sql.ADD_REPLACEMENT, (self.name, self._n_replaced, self._db_seq(row), correct))
            self._n_replaced += 1
        conn.execute(sql.SET_COUNTERS, (len(self), self._rows_read, self._n_replaced, self.name))
        conn.execute(sql.NOTIFY, (sql.CHANNEL, self.name))

    def _rebuild(self) -> None:
        """After a failed write: forget local state and reload it from the database."""
        with self._sync_lock, self._lock:
            self.__dict__.pop("_cards", None)
            History.__init__(self, self._config["dim"], self._config["embedder"], index=self._config["index"])
            self._cards_version, self._n_replaced = -1, 0
            self._skipped_seqs, self._placeholders = [], set()
        try:
            self.sync()
        except SharedStoreError as exc:
            log.warning("history %r: could not reload after a failed write: %s", self.name, exc)

    def add_questions(self, texts: Any, embeddings: np.ndarray, benchmarks: Any = None) -> list[int]:
        vecs = rows.unit_rows(embeddings, self.dim)
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
        vec = rows.unit_rows(np.asarray(embedding).reshape(1, -1), self.dim)
        return self._write("recording an outcome in", lambda: History.add(self, text, vec, outs, benchmark, call_id),
                           [text] if isinstance(text, str) else [], vec, call_id)

    def merge(self, other: History) -> None:
        """Add ``other``'s questions (merged by text), outcomes and cards in ONE transaction: all of
        it is committed, or nothing (``scope history import``)."""
        texts = [other.text(i) for i in range(len(other))]
        vecs = rows.unit_rows(other.embeddings, self.dim)
        lg, cards = other.outcome_log, dict(other.cards)

        def apply() -> None:
            ids = np.asarray(History.add_questions(self, texts, vecs, other.benchmarks), dtype=np.int64)
            if len(lg):
                History.add_outcome_arrays(
                    self, ids[lg.column("qid")], lg.model_names, lg.column("correct"), lg.column("output_tokens"),
                    input_tokens=lg.column("input_tokens"), latency_s=lg.column("latency_s"), source=lg.source_names,
                    model_codes=lg.column("model").astype(np.int64), source_codes=lg.column("source").astype(np.int64),
                )
            if cards:
                self.cards.update(cards)  # local only while applying; the write stores them

        self._write("importing into", apply, texts, vecs, cards=cards)

    def attach_log(self, path: str | Path) -> Any:
        raise HistoryStoreError(
            f"history {self.name!r} is shared through PostgreSQL: every outcome is committed to the database, "
            "so it takes no feedback log"
        )

