"""Live feedback store: an append-only, fsynced log of outcomes, replayed into the history on load.

Outcomes recorded from routed calls (real token usage, user or judge correctness) must survive a
crash the moment `Router.record_outcome` returns. Each one is a line::

    <payload length, 8 hex digits> <crc32 of payload, 8 hex digits> <payload: one JSON object>\\n

written with a single ``write`` on an ``O_APPEND`` descriptor and fsynced before the call returns.
The payload holds the question text, its embedding (base64 float32, so replay needs no embedder)
and the outcomes. The first line names the format and a random log id.

Replay checks every line's length and checksum: a torn last line (the process died mid-write) or a
corrupted line is skipped and reported (a `FeedbackLogWarning` and a count in `ReplayReport`),
never fatal. Before appending, a torn tail is cut off (it was never acknowledged), so the next
record starts on a fresh line.

A history remembers how far into each log it has folded (``History.feedback_applied``, saved in
its manifest), so saving the history and attaching the same log again never counts an outcome
twice.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scope_shared.cards import Outcome
from scope_shared.errors import HistoryStoreError, ScopeError

if TYPE_CHECKING:
    from scope_shared.history import History

MAGIC = "SCOPE-FEEDBACK-LOG 1"

#: fault injection for tests: seconds to sleep between the two halves of a record's write
_SPLIT_WRITE_DELAY = 0.0


class FeedbackLogWarning(UserWarning):
    """Some lines of a feedback log were torn or corrupt and were skipped."""


@dataclass
class ReplayReport:
    """What a replay found: records applied, lines skipped (torn or corrupt) and why."""

    applied: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    truncated_tail_bytes: int = 0


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


class FeedbackLog:
    """An append-only feedback log file (created if missing). Thread-safe; one writer process."""

    def __init__(self, path: str | Path, dim: int) -> None:
        self.path = Path(path)
        self.dim = dim
        self._lock = threading.Lock()
        self.truncated_tail_bytes = 0
        if self.path.exists() and not self.path.is_file():
            raise HistoryStoreError(f"feedback log {str(self.path)!r} is not a file")
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = json.dumps({"format": MAGIC, "log_id": uuid.uuid4().hex, "dim": dim}).encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, _frame(header))
                os.fsync(fd)
            finally:
                os.close(fd)
        self.log_id = self._read_header()
        self._fd: int | None = None

    def _read_header(self) -> str:
        with open(self.path, "rb") as f:
            first = f.readline()
        try:
            head = _parse(first.rstrip(b"\n"))
        except (ValueError, UnicodeDecodeError):
            raise HistoryStoreError(f"{str(self.path)!r} is not a SCOPE feedback log (bad header)") from None
        if head.get("format") != MAGIC:
            raise HistoryStoreError(f"{str(self.path)!r} is not a SCOPE feedback log (format {head.get('format')!r})")
        if head.get("dim") != self.dim:
            raise HistoryStoreError(
                f"feedback log {str(self.path)!r} holds {head.get('dim')}-d embeddings, the history uses {self.dim}"
            )
        return str(head["log_id"])

    # ---------------------------------------------------------------- reading
    def replay(self, history: "History", start: int = 0) -> tuple[ReplayReport, int]:
        """Fold every intact record after byte ``start`` into ``history`` (without re-logging).

        Returns the report and the byte offset just past the last complete line.
        """
        report = ReplayReport()
        data = self.path.read_bytes()
        pos = max(start, len(data.split(b"\n", 1)[0]) + 1)
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:  # torn last line: the writer died mid-record
                report.skipped += 1
                report.problems.append(f"byte {pos}: incomplete last record ({len(data) - pos} bytes)")
                break
            line = data[pos:nl]
            try:
                rec = _parse(line)
                text, emb, outs, bench = self._decode(rec)
                call_id, replaces = _call_of(rec)
            except (ValueError, KeyError, TypeError, ScopeError) as exc:
                report.skipped += 1
                report.problems.append(f"byte {pos}: corrupt record skipped ({exc})")
            else:
                history._add_unlogged(text, emb, outs, bench, call_id, replaces)
                report.applied += 1
            pos = nl + 1
        if report.skipped:
            warnings.warn(
                f"feedback log {str(self.path)!r}: skipped {report.skipped} torn or corrupt record(s): "
                + "; ".join(report.problems[:5]),
                FeedbackLogWarning,
                stacklevel=3,
            )
        return report, pos

    def _decode(self, rec: dict[str, Any]) -> tuple[str, np.ndarray, list[Outcome], str | None]:
        emb = np.frombuffer(base64.b64decode(rec["emb"], validate=True), dtype="<f4")
        if emb.shape != (self.dim,) or not np.all(np.isfinite(emb)):
            raise ValueError(f"embedding of wrong size or not finite ({emb.shape})")
        text = rec["text"]
        if not isinstance(text, str) or not text.strip():
            raise ValueError("empty question text")
        outs = [Outcome.create(**o) for o in rec["outcomes"]]
        bench = rec.get("benchmark")
        return text, emb, outs, bench if isinstance(bench, str) else None

    # ---------------------------------------------------------------- writing
    def _open_for_append(self) -> int:
        """Open once; first cut off a torn tail (an unacknowledged record) so lines stay whole."""
        if self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            size = os.fstat(fd).st_size
            if size:
                back = min(size, 1 << 20)
                os.lseek(fd, size - back, os.SEEK_SET)
                tail = os.read(fd, back)
                if not tail.endswith(b"\n"):
                    nl = tail.rfind(b"\n")
                    cut = size - back + nl + 1 if nl >= 0 else 0
                    if cut == 0:
                        os.close(fd)
                        raise HistoryStoreError(f"feedback log {str(self.path)!r} has no intact header")
                    self.truncated_tail_bytes = size - cut
                    os.ftruncate(fd, cut)
                    os.fsync(fd)
                    warnings.warn(
                        f"feedback log {str(self.path)!r}: cut a torn last record ({size - cut} bytes)",
                        FeedbackLogWarning,
                        stacklevel=4,
                    )
            self._fd = fd
        return self._fd

    def append(
        self, text: str, embedding: np.ndarray, outcomes: Sequence[Outcome], benchmark: str | None = None,
        *, call_id: str | None = None, replaces: float | None = None,
    ) -> int:
        """Write one record and fsync it; returns the file size after it (the record's end).

        ``call_id`` names the routed call the outcome is feedback on, ``replaces`` the score of that
        call's earlier feedback, which this record replaces on replay.
        """
        emb = np.ascontiguousarray(np.asarray(embedding, dtype="<f4").reshape(-1))
        record: dict[str, Any] = {
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
        payload = json.dumps(record, ensure_ascii=True).encode()
        line = _frame(payload)
        with self._lock:
            fd = self._open_for_append()
            if _SPLIT_WRITE_DELAY:
                half = len(line) // 2
                os.write(fd, line[:half])
                time.sleep(_SPLIT_WRITE_DELAY)
                os.write(fd, line[half:])
            else:
                _write_all(fd, line)
            os.fsync(fd)
            return os.fstat(fd).st_size

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
