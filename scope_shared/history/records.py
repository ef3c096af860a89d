"""Every outcome ever added, stored as growable numpy columns (what is persisted).

A list of pydantic objects costs ~1 KB per outcome; this costs 20 bytes (question id, model, score,
output tokens, source), plus 8 more once any outcome carries input tokens or latency. Reading
`History.records` builds `OutcomeRecord` objects on demand, so the public API is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from scope_shared.cards import Outcome


@dataclass(frozen=True)
class OutcomeRecord:
    """One stored outcome: which question (by id) and what the model did."""

    question_id: int
    outcome: Outcome


# model and source are codes into name tables: int16, widened on demand past 32,767 names
_REQUIRED = {"qid": np.int32, "model": np.int16, "correct": np.float64, "output_tokens": np.float32, "source": np.int16}
_OPTIONAL = {"input_tokens": np.float32, "latency_s": np.float32}


class OutcomeLog:
    """Columnar, append-only log of outcomes; NaN stands for a missing optional number."""

    def __init__(self) -> None:
        self._n = 0
        self._cols: dict[str, np.ndarray] = {k: np.zeros(0, t) for k, t in _REQUIRED.items()}
        self.model_names: list[str] = []
        self.source_names: list[str] = []
        self._model_idx: dict[str, int] = {}
        self._source_idx: dict[str, int] = {}

    def __len__(self) -> int:
        return self._n

    def _code(self, names: list[str], index: dict[str, int], name: str) -> int:
        i = index.get(name)
        if i is None:
            i = index[name] = len(names)
            names.append(name)
        return i

    def model_code(self, name: str) -> int:
        return self._code(self.model_names, self._model_idx, name)

    def source_code(self, name: str) -> int:
        return self._code(self.source_names, self._source_idx, name)

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        cap = len(self._cols["qid"])
        if need <= cap:
            return
        cap = max(need, 2 * cap, 1024)
        for k, a in self._cols.items():
            grown = np.full(cap, np.nan, a.dtype) if a.dtype.kind == "f" else np.zeros(cap, a.dtype)
            grown[: self._n] = a[: self._n]
            self._cols[k] = grown

    def append_columns(self, **cols: Any) -> None:
        """Append rows given as equal-length arrays: qid, model (codes), correct, output_tokens, source
        (codes), and optionally input_tokens, latency_s (NaN = missing)."""
        m = len(cols["qid"])
        if m == 0:
            return
        for k in _OPTIONAL:
            v = cols.get(k)
            if v is not None and k not in self._cols and np.isfinite(np.asarray(v, np.float64)).any():
                self._cols[k] = np.full(len(self._cols["qid"]), np.nan, _OPTIONAL[k])
        for k in ("model", "source"):
            top = int(np.max(cols[k])) if len(cols[k]) else 0
            if top > np.iinfo(self._cols[k].dtype).max:
                self._cols[k] = self._cols[k].astype(np.int32)
        self._reserve(m)
        sl = slice(self._n, self._n + m)
        for k, a in self._cols.items():
            v = cols.get(k)
            a[sl] = np.nan if v is None else np.asarray(v)
        self._n += m

    def append(self, qid: int, o: Outcome) -> None:
        nan = float("nan")
        self.append_columns(
            qid=[qid],
            model=[self.model_code(o.model)],
            correct=[o.correct],
            output_tokens=[nan if o.output_tokens is None else o.output_tokens],
            source=[self.source_code(o.source)],
            input_tokens=[nan if o.input_tokens is None else o.input_tokens],
            latency_s=[nan if o.latency_s is None else o.latency_s],
        )

    def set_correct(self, row: int, value: float) -> float:
        """Replace the score of one row (a call's feedback replaced); returns the old score."""
        if not 0 <= row < self._n:
            raise IndexError(f"outcome row {row} out of range")
        old = float(self._cols["correct"][row])
        self._cols["correct"][row] = value
        return old

    def last_row(self, qid: int, model: str, correct: float | None = None, source: str | None = None) -> int | None:
        """The last row for (question, model) [with that score and source], or None."""
        if model not in self._model_idx:
            return None
        hit = (self.column("qid") == qid) & (self.column("model") == self._model_idx[model])
        if correct is not None:
            hit &= np.isclose(self.column("correct"), correct)
        if source is not None:
            hit &= self.column("source") == self._source_idx.get(source, -1)
        rows = np.flatnonzero(hit)
        return int(rows[-1]) if len(rows) else None

    def column(self, name: str) -> np.ndarray:
        """One column over all rows (a view; NaN-filled for an optional column never set)."""
        a = self._cols.get(name)
        if a is None:
            return np.full(self._n, np.nan, np.float32)
        return a[: self._n]

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        """Rows as plain dicts (the JSON form of the store: ``{"q", "model", "correct", ...}``)."""
        stop = self._n if stop is None else min(stop, self._n)
        cols = {k: a[start:stop].tolist() for k, a in self._cols.items()}
        for i in range(stop - start):
            row: dict[str, Any] = {"q": cols["qid"][i], "model": self.model_names[cols["model"][i]]}
            row["correct"] = cols["correct"][i]
            for k in ("output_tokens", "input_tokens", "latency_s"):
                if k in cols and cols[k][i] == cols[k][i]:  # not NaN
                    row[k] = cols[k][i]
            row["source"] = self.source_names[cols["source"][i]]
            yield row

    def record(self, i: int) -> OutcomeRecord:
        row = next(self.rows(i, i + 1))
        return OutcomeRecord(row.pop("q"), Outcome.model_construct(**{**_DEFAULTS, **row}))

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._cols.values())


_DEFAULTS = {"output_tokens": None, "input_tokens": None, "latency_s": None}


class RecordsView(Sequence[OutcomeRecord]):
    """Read-only sequence over the first ``n`` records of a log (a snapshot of its length)."""

    def __init__(self, log: OutcomeLog) -> None:
        self._log = log
        self._len = len(log)

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> OutcomeRecord: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[OutcomeRecord, ...]: ...
    def __getitem__(self, i: int | slice) -> OutcomeRecord | tuple[OutcomeRecord, ...]:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(self._len)))
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("record index out of range")
        return self._log.record(i)

    def __iter__(self) -> Iterator[OutcomeRecord]:
        for start in range(0, self._len, 4096):
            for row in self._log.rows(start, min(start + 4096, self._len)):
                yield OutcomeRecord(row.pop("q"), Outcome.model_construct(**{**_DEFAULTS, **row}))
