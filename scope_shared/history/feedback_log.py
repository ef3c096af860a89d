"""Live feedback store: an append-only, fsynced log of outcomes, replayed into the history on load.

Outcomes recorded from routed calls (real token usage, user or judge correctness) must survive a
crash the moment `Router.record_outcome` returns. Each one is a line::

    <payload length, 8 hex digits> <crc32 of payload, 8 hex digits> <payload: one JSON object>\\n

written with a single ``write`` on an ``O_APPEND`` descriptor and fsynced before the call returns.
The payload holds the question text, its embedding (base64 float32, so replay needs no embedder),
the outcomes, optionally the routed call's id (``call_id``) and the score of that call's earlier
feedback this record replaces (``replaces``, `scope_shared.history.feedback_calls`), and the
record's key: the writer's
*segment* (a random id per open log, ``<log id>:<16 hex>``) and its sequence number there
(``seq``, 1, 2, ...). The first line names the format and a random log id.

Many processes may append to one log: every append holds an exclusive ``flock`` on the file, so
records never interleave and a torn tail (a writer died mid-record) is cut only when no live writer
can be mid-write. Replay reads under a shared lock.

Replay checks every line's length and checksum: a torn last line or a corrupted line is skipped and
reported (a `FeedbackLogWarning` and a count in `ReplayReport`), never fatal.

Exactly once: a history remembers, per segment, the highest ``seq`` it has folded in
(``History.feedback_applied``, saved in its manifest). Records are keyed by (segment, seq), not by
byte offset, so a log restored from an older backup, or records that other processes appended in
between, are never skipped, and saving the history then replaying the log again never counts an
outcome twice. (Records written before segments existed are still matched by byte offset, under
the log id's key.)
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scope_shared.cards import Outcome
from scope_shared.errors import FeedbackError, HistoryStoreError, ScopeError
from scope_shared.history.locks import fd_lock
from scope_shared.query import unencodable_at

if TYPE_CHECKING:
    from scope_shared.history import History

MAGIC = "SCOPE-FEEDBACK-LOG 1"
_HEADER_MAX = 4096

#: fault injection for tests: called between the two halves of a record's write
_BETWEEN_HALVES: Callable[[], None] | None = None


class FeedbackLogWarning(UserWarning):
    """Some lines of a feedback log were torn or corrupt and were skipped."""


@dataclass
class ReplayReport:
    """What a replay found: records applied, lines skipped (torn or corrupt) and why."""

    applied: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    truncated_tail_bytes: int = 0
    #: records already in the history (by their segment and sequence number), not applied again
    already_applied: int = 0


@dataclass(frozen=True)
class FeedbackRecord:
    """One decoded record. ``segment`` is None for records written before segments existed."""

    text: str
    embedding: np.ndarray
    outcomes: list[Outcome]
    benchmark: str | None
    segment: str | None
    seq: int
    call_id: str | None = None
    replaces: float | None = None  # the score of the same call's earlier feedback it replaces


def _frame(payload: bytes) -> bytes:
    return b"%08x %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def _parse(line: bytes) -> dict[str, Any]:
    """One framed line (without its newline) -> payload dict; ValueError if torn or corrupt."""
    if len(line) < 18 or line[8:9] != b" " or line[17:18] != b" ":
        raise ValueError("bad framing")
    n, crc = int(line[:8], 16), int(line[9:17], 16)
    payload = line[18:]
    if len(payload) != n:
        raise ValueError(f"length {len(payload)} != {n}")
    if zlib.crc32(payload) != crc:
        raise ValueError("checksum mismatch")
    obj = json.loads(payload)
    if not isinstance(obj, dict):
        raise ValueError("payload is not an object")
    return obj


def _as_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise HistoryStoreError(f"a feedback log path must be a non-empty str or path, got {path!r}")
    return Path(path)


class FeedbackLog:
    """An append-only feedback log file (created if missing). Thread- and process-safe."""

    def __init__(self, path: str | Path, dim: int) -> None:
        self.path = _as_path(path)
        self.dim = dim
        self._lock = threading.Lock()
        self.truncated_tail_bytes = 0
        if self.path.exists() and not self.path.is_file():
            raise HistoryStoreError(f"feedback log {str(self.path)!r} is not a file")
        try:
            self._create_if_empty()
            self.log_id = self._read_header()
        except OSError as exc:
            raise HistoryStoreError(f"cannot open feedback log {str(self.path)!r}: {exc.strerror or exc}") from None
        #: this writer's segment: the key its records carry (see the module docstring)
        self.segment = f"{self.log_id}:{uuid.uuid4().hex[:16]}"
        self._seq = 0
        self._fd: int | None = None

    def _create_if_empty(self) -> None:
        """Write the header once, even when several processes create the log at the same moment."""
        if self.path.is_file() and self.path.stat().st_size > 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            with fd_lock(fd, exclusive=True, what=f"feedback log {str(self.path)!r}"):
                if os.fstat(fd).st_size == 0:
                    header = json.dumps({"format": MAGIC, "log_id": uuid.uuid4().hex, "dim": self.dim}).encode()
                    os.write(fd, _frame(header))
                    os.fsync(fd)
        finally:
            os.close(fd)

    def _read_header(self) -> str:
        with open(self.path, "rb") as f:
            first = f.readline(_HEADER_MAX)
        try:
            head = _parse(first.rstrip(b"\n"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HistoryStoreError(f"{str(self.path)!r} is not a SCOPE feedback log (bad header)") from None
        if head.get("format") != MAGIC or not isinstance(head.get("log_id"), str):
            raise HistoryStoreError(f"{str(self.path)!r} is not a SCOPE feedback log (format {head.get('format')!r})")
        if head.get("dim") != self.dim:
            raise HistoryStoreError(
                f"feedback log {str(self.path)!r} holds {head.get('dim')}-d embeddings, the history uses {self.dim}"
            )
        return str(head["log_id"])

    # ---------------------------------------------------------------- reading
    def _read_all(self) -> bytes:
        """The whole file, read under a shared lock (no append is half-written while we read)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise HistoryStoreError(f"cannot read feedback log {str(self.path)!r}: {exc.strerror or exc}") from None
        try:
            with fd_lock(fd, exclusive=False, what=f"feedback log {str(self.path)!r}"):
                chunks = []
                while chunk := os.read(fd, 1 << 24):
                    chunks.append(chunk)
                return b"".join(chunks)
        finally:
            os.close(fd)

    def records(self, report: ReplayReport | None = None) -> Iterator[tuple[int, int, FeedbackRecord]]:
        """Every intact record as ``(start offset, end offset, record)``; torn or corrupt lines are
        counted in ``report`` and skipped."""
        report = report if report is not None else ReplayReport()
        data = self._read_all()
        pos = len(data.split(b"\n", 1)[0]) + 1
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:  # torn last line: the writer died mid-record
                report.skipped += 1
                report.problems.append(f"byte {pos}: incomplete last record ({len(data) - pos} bytes)")
                return
            try:
                rec = self._decode(_parse(data[pos:nl]))
            except (ValueError, KeyError, TypeError, ScopeError, RecursionError) as exc:
                report.skipped += 1
                report.problems.append(f"byte {pos}: corrupt record skipped ({str(exc)[:200]})")
            else:
                yield pos, nl + 1, rec
            pos = nl + 1

    def replay(self, history: "History", applied: Mapping[str, int] | None = None) -> tuple[ReplayReport, dict[str, int]]:
        """Fold every intact record not yet in ``history`` into it (without re-logging).

        ``applied`` is the history's ``feedback_applied``. Returns the report and the new marks
        (segment -> highest seq applied; for pre-segment records, log id -> byte offset).
        """
        applied = dict(applied or {})
        report = ReplayReport()
        marks: dict[str, int] = {}
        legacy_start = applied.get(self.log_id, 0)
        for start, end, rec in self.records(report):
            if rec.segment is None:
                if start < legacy_start:
                    report.already_applied += 1
                    continue
                key, mark = self.log_id, end
            else:
                if rec.seq <= max(applied.get(rec.segment, 0), marks.get(rec.segment, 0)):
                    report.already_applied += 1
                    continue
                key, mark = rec.segment, rec.seq
            try:
                self._apply(history, rec)
            except ScopeError as exc:
                report.skipped += 1
                report.problems.append(f"byte {start}: record not applicable ({str(exc)[:200]})")
                continue
            report.applied += 1
            marks[key] = mark
        if report.skipped:
            warnings.warn(
                f"feedback log {str(self.path)!r}: skipped {report.skipped} torn or corrupt record(s): "
                + "; ".join(report.problems[:5]),
                FeedbackLogWarning,
                stacklevel=3,
            )
        return report, marks

    @staticmethod
    def _apply(history: "History", rec: FeedbackRecord) -> None:
        history._add_unlogged(rec.text, rec.embedding, rec.outcomes, rec.benchmark, rec.call_id, rec.replaces)

    def _decode(self, rec: dict[str, Any]) -> FeedbackRecord:
        emb = np.frombuffer(base64.b64decode(rec["emb"], validate=True), dtype="<f4")
        if emb.shape != (self.dim,) or not np.all(np.isfinite(emb)):
            raise ValueError(f"embedding of wrong size or not finite ({emb.shape})")
        text = rec["text"]
        if not isinstance(text, str) or not text.strip() or unencodable_at(text) is not None:
            raise ValueError("empty or unencodable question text")
        outs = [Outcome.create(**o) for o in rec["outcomes"]]
        bench = rec.get("benchmark")
        segment, seq = rec.get("seg"), rec.get("seq", 0)
        if segment is not None and (not isinstance(segment, str) or isinstance(seq, bool) or not isinstance(seq, int) or seq < 1):
            raise ValueError("bad record key")
        call_id, replaces = _call_of(rec)
        bench = bench if isinstance(bench, str) and unencodable_at(bench) is None else None
        return FeedbackRecord(text, emb, outs, bench, segment, seq if segment is not None else 0, call_id, replaces)

    # ---------------------------------------------------------------- writing
    def _open_for_append(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        return self._fd

    def _cut_torn_tail(self, fd: int) -> None:
        """Cut an unfinished last record (its writer died: we hold the lock, no one else writes)."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        end = size
        while end > 0:
            start = max(0, end - (1 << 20))
            nl = os.pread(fd, end - start, start).rfind(b"\n")
            if nl >= 0:
                cut = start + nl + 1
                break
            end = start
        else:
            raise HistoryStoreError(f"feedback log {str(self.path)!r} has no intact header")
        self.truncated_tail_bytes = size - cut
        os.ftruncate(fd, cut)
        os.fsync(fd)
        warnings.warn(
            f"feedback log {str(self.path)!r}: cut a torn last record ({size - cut} bytes)",
            FeedbackLogWarning,
            stacklevel=5,
        )

    def append(
        self,
        text: str,
        embedding: np.ndarray,
        outcomes: Sequence[Outcome],
        benchmark: str | None = None,
        *,
        call_id: str | None = None,
        replaces: float | None = None,
    ) -> tuple[str, int]:
        """Write one record and fsync it; returns its key ``(segment, seq)``.

        ``call_id`` names the routed call the outcome is feedback on, ``replaces`` the score of that
        call's earlier feedback, which this record replaces on replay.
        """
        if call_id is not None and not isinstance(call_id, str):
            raise FeedbackError(f"call_id must be a string, got {type(call_id).__name__}")
        emb = np.ascontiguousarray(np.asarray(embedding, dtype="<f4").reshape(-1))
        with self._lock:
            self._seq += 1  # never reused, even if this write fails half-way
            seq = self._seq
            record: dict[str, Any] = {
                "seg": self.segment,
                "seq": seq,
                "text": text,
                "emb": base64.b64encode(emb.tobytes()).decode(),
                "benchmark": benchmark,
                "outcomes": [o.model_dump(exclude_none=True) for o in outcomes],
                "t": time.time(),
            }
            if call_id is not None:
                record["call_id"] = call_id
            if replaces is not None:
                record["replaces"] = replaces
            line = _frame(json.dumps(record, ensure_ascii=True).encode())
            try:
                fd = self._open_for_append()
                with fd_lock(fd, exclusive=True, what=f"feedback log {str(self.path)!r}"):
                    self._cut_torn_tail(fd)
                    if _BETWEEN_HALVES is not None:
                        half = len(line) // 2
                        _write_all(fd, line[:half])
                        _BETWEEN_HALVES()
                        _write_all(fd, line[half:])
                    else:
                        _write_all(fd, line)
                    os.fsync(fd)
            except OSError as exc:
                raise HistoryStoreError(f"cannot append to feedback log {str(self.path)!r}: {exc.strerror or exc}") from None
            return self.segment, seq

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _call_of(rec: dict[str, Any]) -> tuple[str | None, float | None]:
    """The call id and replaced score of a record (both optional; older records have neither)."""
    call_id, replaces = rec.get("call_id"), rec.get("replaces")
    if call_id is not None and not isinstance(call_id, str):
        raise ValueError("call_id is not a string")
    if replaces is not None and (isinstance(replaces, bool) or not isinstance(replaces, (int, float))):
        raise ValueError("replaces is not a number")
    return call_id, None if replaces is None else float(replaces)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
