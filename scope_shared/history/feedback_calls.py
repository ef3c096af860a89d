"""Feedback keyed by call: a routed call's later feedback replaces its earlier one, never adds to it.

`History.add(..., call_id=...)` records which outcome row holds each call's feedback; when the same
call gets feedback again, that row's score is replaced (the aggregate moves, the outcome count
stays). The feedback log carries the call id and the score replaced, so a replay, even one that
starts after a save folded the first feedback in, replaces rather than counts twice.
"""

from __future__ import annotations

import threading

from scope_shared.cards import Outcome
from scope_shared.history.columns import ModelColumn
from scope_shared.history.records import OutcomeLog


class FeedbackCalls:
    """Call id -> the outcome row of its feedback (in memory; a replay after a load finds rows by value)."""

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}
        self._lock = threading.Lock()

    def previous(self, call_id: str | None, log: OutcomeLog, model: str | None = None) -> float | None:
        """The score this call's feedback on ``model`` has now (None: none yet, as far as this process knows)."""
        with self._lock:
            row = self._rows.get(call_id) if call_id else None
        if row is None or (model is not None and not _row_is(log, row, None, model)):
            return None
        return float(log.column("correct")[row])

    def replace(
        self,
        log: OutcomeLog,
        columns: dict[str, ModelColumn],
        qid: int,
        outcomes: list[Outcome],
        call_id: str | None,
        replaces: float | None = None,
    ) -> bool:
        """Replace the call's earlier feedback with ``outcomes[0]``; False if there is none to replace."""
        if not call_id or len(outcomes) != 1:
            return False
        new = outcomes[0]
        with self._lock:
            row = self._rows.get(call_id)
            if row is None and replaces is not None:  # folded in before a save: find it by its values
                row = log.last_row(qid, new.model, replaces, new.source)
            if row is None or new.model not in columns or not _row_is(log, row, qid, new.model):
                return False  # no earlier feedback on this question and model: a new outcome
            old = log.set_correct(row, new.correct)
            columns[new.model].adjust(qid, new.correct - old)
            self._rows[call_id] = row
            return True

    def row(self, call_id: str | None) -> int | None:
        """The outcome row holding this call's feedback (None: none, as far as this process knows)."""
        with self._lock:
            return self._rows.get(call_id) if call_id else None

    def remember(self, call_id: str | None, row: int) -> None:
        if call_id:
            with self._lock:
                self._rows[call_id] = row


def _row_is(log: OutcomeLog, row: int, qid: int | None, model: str) -> bool:
    """Whether outcome ``row`` is about ``model`` (and question ``qid``, when given)."""
    if model not in log.model_names:
        return False
    same_model = int(log.column("model")[row]) == log.model_names.index(model)
    return same_model and (qid is None or int(log.column("qid")[row]) == qid)
