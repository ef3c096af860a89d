"""A ledger shared by many processes and machines, kept in PostgreSQL (``Ledger.connect(url)``).

It implements the ledger interface (`scope_shared.budget.base.BaseLedger`: its five storage
primitives, one database round trip each), so modes, nesting, the overshoot record and the total
`Reservation` are the in-memory `Ledger`'s, and routers, routed calls and both integrations use it
unchanged. What it adds:

- **named budgets**: every process that connects with the same ``name`` spends from one budget
  (a chain's, a team's). The first connection creates it (``budget=`` is then required, ``None``
  for an unlimited, accounting-only one); later ones read its settings, and refuse settings that
  differ unless ``reconfigure=True``. ``parent=`` nests it in another ledger in this process.
- **periods**: ``period="daily"`` (or ``"hourly"``, ``"weekly"``, or seconds) starts every period,
  aligned to UTC midnight for days, with nothing spent.
- **leases**: every hold carries a lease (``lease_s``). While the process lives, a background thread
  renews its open holds every ``lease_s / 3``; a process killed mid-call stops renewing, and its
  holds stop counting once the lease ends.
- **exact money**: costs are stored as exact decimals (each float's shortest repr), so the total of
  many processes' charges is exactly the sum of the costs charged.
- **settles survive outages**: a settle the database could not take is kept and retried by the
  background thread (its hold renewed meanwhile) until it lands, once: a retry finds an entry
  already written for its hold and charges nothing twice. A pending settle never stops the
  renewal of the process's other holds.
- **no settle is lost**: entries are cleaned before they are sent (NUL bytes and lone surrogates,
  which PostgreSQL refuses in text and jsonb, become U+FFFD; non-finite numbers in ``info`` become
  strings). A settle the database still refuses for good (not a timeout or a lost connection) is
  not retried: its cost is charged as a bare entry (cost and hold only) and the full entry kept in
  the dead-letter record (`dead_letters`, and appended to the ``dead_letter`` file when one is
  given); if even the bare entry cannot land, or the server is away at `close`, the cost is counted
  as spent by this process (`spent`, `calls`) and recorded the same way. Never dropped.

A capping budget is never overdrawn while real costs stay within what was held: a hold is
granted only if it fits beside every live hold and everything spent, checked and inserted under
the budget row's lock. Each call is bounded by the connection's timeouts
(`scope_shared.postgres.Timeouts`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Hashable
from decimal import Decimal
from pathlib import Path
from typing import Any

from scope_shared.budget.base import BaseLedger, BudgetMode, LedgerEntry, LedgerState, check_amount, normalize_mode
from scope_shared.budget.postgres_sql import DDL, VERSION
from scope_shared.errors import InvalidBudgetError, InvalidUsageError, SharedStoreError
from scope_shared.postgres import Session, Timeouts, describe, ensure_schema, redact

log = logging.getLogger(__name__)

PERIODS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0}
_STORED: Any = object()  # "use what the database has"
_STATUS = ("SELECT spent, reserved, calls, overshoot_calls, overshoot_excess, max_ratio, period_start "
           "FROM scope_budget_status(%s)")


def _money(x: float) -> Decimal:
    """A float cost as the exact decimal of its shortest repr (0.1 -> Decimal('0.1'))."""
    return Decimal(repr(float(x)))


def _clean_text(value: str) -> str:
    """``value`` as text PostgreSQL stores: NUL and lone surrogates become U+FFFD."""
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)


def _clean_json(value: Any, depth: int = 0) -> Any:
    """``info`` as JSON PostgreSQL's jsonb takes (clean strings, finite numbers, bounded depth)."""
    if isinstance(value, str):
        return _clean_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth < 32 and isinstance(value, dict):
        return {_clean_text(str(k)): _clean_json(v, depth + 1) for k, v in value.items()}
    if depth < 32 and isinstance(value, (list, tuple)):
        return [_clean_json(v, depth + 1) for v in value]
    return _clean_text(str(value))


def _period_seconds(period: float | str | None) -> float | None:
    if period is None:
        return None
    if isinstance(period, str):
        if period not in PERIODS:
            raise InvalidBudgetError(f"period must be one of {', '.join(PERIODS)} or seconds, got {period!r}")
        return PERIODS[period]
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not math.isfinite(period) or period <= 0:
        raise InvalidBudgetError(f"period must be a positive number of seconds, got {period!r}")
    return float(period)


def _wanted(budget: Any, mode: Any, period: Any) -> dict[str, Any]:
    """The settings the caller asked for (validated), leaving out those to read from the database."""
    wanted: dict[str, Any] = {}
    if budget is not _STORED:
        if budget is not None:
            try:
                budget = check_amount(budget, "budget")
            except InvalidUsageError as exc:
                raise InvalidBudgetError(str(exc)) from None
        wanted["budget"] = budget
    if mode is not None:
        wanted["mode"] = normalize_mode(mode)
    if period is not _STORED:
        wanted["period_s"] = _period_seconds(period)
    return wanted


class PostgresLedger(BaseLedger):
    """A named budget in PostgreSQL; see the module docstring. Create with `Ledger.connect`."""

    pickle_advice = "in each process connect to the same budget instead: Ledger.connect(url, name)"

    def __init__(
        self,
        url: str,
        name: str = "default",
        *,
        budget: float | None = _STORED,
        mode: BudgetMode | str | None = None,
        period: float | str | None = _STORED,
        parent: BaseLedger | None = None,
        max_hold_factor: float = 4.0,
        lease_s: float = 60.0,
        reconfigure: bool = False,
        timeouts: Timeouts | None = None,
        dead_letter: str | Path | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidBudgetError(f"a shared budget needs a non-empty name, got {name!r}")
        if isinstance(lease_s, bool) or not isinstance(lease_s, (int, float)) or not math.isfinite(lease_s) or lease_s <= 0:
            raise InvalidBudgetError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        wanted = _wanted(budget, mode, period)
        self.url, self.lease_s = url, float(lease_s)
        self.owner = uuid.uuid4().hex  # this process's holds, for inspection
        self._session = Session(url, timeouts)
        self._heartbeat_session = Session(url, timeouts)
        self._lock = threading.Lock()
        self._open: dict[int, float] = {}  # hold id -> amount, renewed by the heartbeat
        self._pending: dict[int, tuple[float, LedgerEntry]] = {}  # settles to retry
        #: settles that could not land as sent (see the module docstring), oldest first
        self.dead_letters: list[dict[str, Any]] = []
        self.dead_letter_path = None if dead_letter is None else Path(dead_letter)
        self._unlanded = LedgerState()  # what dead-lettered settles that never reached the database cost
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        ensure_schema(self._session.connection(), "ledger", VERSION, DDL)
        self.name = name
        stored = self._session.run(f"opening budget {name!r}", lambda c: self._open_budget(c, wanted, reconfigure))
        self.period_s: float | None = stored["period_s"]
        super().__init__(stored["budget"], name, stored["mode"], parent=parent, max_hold_factor=max_hold_factor)

    def _open_budget(self, conn: Any, wanted: dict[str, Any], reconfigure: bool) -> dict[str, Any]:
        row = conn.execute(
            "SELECT budget, mode, period_s FROM scope_budgets WHERE name = %s FOR UPDATE", (self.name,)
        ).fetchone()
        if row is None:
            if "budget" not in wanted:
                raise SharedStoreError(
                    f"no budget named {self.name!r} at {describe(self.url)}: pass budget=USD "
                    "(or budget=None for an unlimited one) to create it"
                )
            new = {"budget": wanted["budget"], "mode": wanted.get("mode", "raise"), "period_s": wanted.get("period_s")}
            conn.execute(
                "INSERT INTO scope_budgets (name, budget, mode, period_s, period_start) "
                "VALUES (%s, %s, %s, %s, scope_period_start(%s, clock_timestamp()))",
                (self.name, None if new["budget"] is None else _money(new["budget"]), new["mode"],
                 new["period_s"], new["period_s"]),
            )
            return new
        stored = {"budget": None if row[0] is None else float(row[0]), "mode": row[1], "period_s": row[2]}
        differ = {k: v for k, v in wanted.items() if stored[k] != v}
        if differ and not reconfigure:
            said = ", ".join(f"{k}={v!r} (stored: {stored[k]!r})" for k, v in differ.items())
            raise SharedStoreError(
                f"budget {self.name!r} already exists with other settings: {said}; "
                "pass reconfigure=True to change them for every process"
            )
        if differ:
            stored.update(differ)
            conn.execute(
                "UPDATE scope_budgets SET budget = %s, mode = %s, period_s = %s WHERE name = %s",
                (None if stored["budget"] is None else _money(stored["budget"]), stored["mode"],
                 stored["period_s"], self.name),
            )
        return stored

    def child(self, budget: float | None = None, name: str | None = None, mode: BudgetMode | str = "raise") -> BaseLedger:
        """A nested shared budget (named ``<this name>/<random>`` unless ``name`` is given)."""
        return PostgresLedger(self.url, name or f"{self.name}/{uuid.uuid4().hex[:8]}", budget=budget, mode=mode,
                              parent=self, max_hold_factor=self.max_hold_factor, lease_s=self.lease_s,
                              timeouts=self._session.timeouts)

    def __repr__(self) -> str:
        return f"PostgresLedger(name={self.name!r}, budget={self.budget}, mode={self.mode!r}, at={describe(self.url)!r})"

    # ---------------------------------------------------------------- the five primitives
    def _open_hold(self, amount: float, force: bool) -> Hashable:
        hold_id, left, _ = self._session.run(
            f"reserving on budget {self.name!r}",
            lambda c: c.execute(
                "SELECT * FROM scope_reserve(%s, %s, %s, %s, %s)",
                (self.name, _money(amount), bool(force), self.owner, self.lease_s),
            ).fetchone(),
        )
        if hold_id is None:
            raise self.short_of(amount, float(left))
        with self._lock:
            self._open[hold_id] = amount
        self._ensure_heartbeat()
        return hold_id

    def _close_hold(self, key: Hashable, entry: LedgerEntry | None) -> bool:
        with self._lock:
            held = self._open.pop(key, None)  # type: ignore[call-overload]
        if held is None:
            return False
        if entry is None:
            try:
                self._session.run(f"releasing a hold on budget {self.name!r}",
                                  lambda c: c.execute("DELETE FROM scope_holds WHERE id = %s", (key,)))
            except SharedStoreError as exc:  # no longer renewed, so it lapses after its lease
                log.warning("budget %r: %s; the hold lapses in %.0f s", self.name, exc, self.lease_s)
            return True
        try:
            self._land(key, held, entry)  # type: ignore[arg-type]
        except SharedStoreError as exc:
            log.warning("budget %r: %s; the settle is retried in the background", self.name, exc)
            with self._lock:
                self._pending[key] = (held, entry)  # type: ignore[index]
        return True

    def _settle_in_db(self, hold_id: int | None, held: float | None, e: LedgerEntry) -> bool:
        model = None if e.model is None else _clean_text(e.model)
        info = json.dumps(_clean_json(e.info), allow_nan=False)
        return self._session.run(
            f"charging budget {self.name!r}",
            lambda c: c.execute(
                "SELECT scope_settle(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (self.name, hold_id, None if held is None else _money(held), _money(e.cost), model,
                 e.input_tokens, e.output_tokens, e.expected_cost, info, e.time),
            ).fetchone()[0],
        )

    def _land(self, hold_id: int | None, held: float | None, entry: LedgerEntry) -> None:
        """Settle (or charge) ``entry``; a refusal for good goes to the dead-letter record, its cost
        charged as a bare entry or, failing that, counted here. Raises only transient failures."""
        try:
            self._settle_in_db(hold_id, held, entry)
            return
        except SharedStoreError as exc:
            if not getattr(exc, "permanent", False):
                raise
            reason = str(exc)
        bare = LedgerEntry(cost=entry.cost, expected_cost=entry.expected_cost, time=entry.time,
                           info={"dead_letter": "the full entry was refused; kept by the process that made the call"})
        try:
            self._settle_in_db(hold_id, held, bare)
            landed = True
        except SharedStoreError as exc:
            if not getattr(exc, "permanent", False):
                raise
            landed, reason = False, f"{reason}; the bare entry too: {exc}"
        self._dead_letter(hold_id, held, entry, reason, landed)

    def _dead_letter(self, hold_id: int | None, held: float | None, e: LedgerEntry, reason: str, landed: bool) -> None:
        record = {"budget": self.name, "hold_id": hold_id, "held": held, "cost": e.cost, "model": e.model,
                  "input_tokens": e.input_tokens, "output_tokens": e.output_tokens, "expected_cost": e.expected_cost,
                  "info": _clean_json(e.info), "time": e.time, "reason": redact(reason),
                  "charged_in_database": landed}
        with self._lock:
            self.dead_letters.append(record)
            if not landed:
                u = self._unlanded
                self._unlanded = dataclasses.replace(u, spent=u.spent + e.cost, calls=u.calls + 1)
        (log.warning if landed else log.error)(
            "budget %r: a settle of $%s could not be written as sent (%s); %s", self.name, e.cost, redact(reason),
            "its cost was charged as a bare entry" if landed else "its cost is counted as spent by this process only",
        )
        if self.dead_letter_path is not None:
            self._append_dead_letter(record)

    def _append_dead_letter(self, record: dict[str, Any]) -> None:
        """One JSON line, appended with one write and fsynced (records of many processes interleave whole)."""
        line = (json.dumps(record, default=str, ensure_ascii=True) + "\n").encode()
        try:
            self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
            fd = os.open(self.dead_letter_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:  # the record stays in memory (dead_letters) and in the log
            log.error("budget %r: cannot append to dead-letter file %s: %s", self.name, self.dead_letter_path, exc)

    def _record(self, entry: LedgerEntry) -> None:
        self._land(None, None, entry)

    def _state(self) -> LedgerState:
        row = self._session.run(f"reading budget {self.name!r}", lambda c: c.execute(_STATUS, (self.name,)).fetchone())
        u = self._unlanded
        return LedgerState(spent=float(row[0]) + u.spent, reserved=float(row[1]), calls=int(row[2]) + u.calls,
                           overshoot_calls=int(row[3]), overshoot_excess=float(row[4]), max_ratio=float(row[5]))

    @property
    def entries(self) -> list[LedgerEntry]:
        """Every call settled or charged in the current period, by every process, oldest first."""
        rows = self._session.run(
            f"reading entries of budget {self.name!r}",
            lambda c: c.execute(
                "SELECT e.cost, e.model, e.input_tokens, e.output_tokens, e.expected_cost, e.info, e.time "
                "FROM scope_ledger_entries e, scope_budget_status(%s) s "
                "WHERE e.budget = %s AND e.period_start = s.period_start ORDER BY e.id",
                (self.name, self.name),
            ).fetchall(),
        )
        return [LedgerEntry(cost=float(r[0]), model=r[1], input_tokens=r[2], output_tokens=r[3],
                            expected_cost=r[4], info=dict(r[5] or {}), time=r[6]) for r in rows]

    def per_model(self) -> dict[str, dict[str, float]]:
        """Calls and USD per model in the current period, summed by the database."""
        rows = self._session.run(
            f"summarising budget {self.name!r}",
            lambda c: c.execute(
                "SELECT coalesce(e.model, '?'), count(*), sum(e.cost) FROM scope_ledger_entries e, "
                "scope_budget_status(%s) s WHERE e.budget = %s AND e.period_start = s.period_start GROUP BY 1 ORDER BY 1",
                (self.name, self.name),
            ).fetchall(),
        )
        return {m: {"calls": int(n), "cost": float(c)} for m, n, c in rows}

    def summary(self) -> dict[str, Any]:
        """`BaseLedger.summary`, plus the period (length and start) and where the budget lives."""
        start = self._session.run(
            f"reading budget {self.name!r}",
            lambda c: c.execute("SELECT period_start FROM scope_budget_status(%s)", (self.name,)).fetchone()[0],
        )
        return {**super().summary(), "period_s": self.period_s, "period_start": start.isoformat(), "at": describe(self.url)}

    # ---------------------------------------------------------------- leases and retried settles
    @property
    def open_holds(self) -> int:
        """Holds this process has open (not yet settled or cancelled)."""
        with self._lock:
            return len(self._open)

    @property
    def pending_settles(self) -> int:
        """Settles waiting for the database to come back."""
        with self._lock:
            return len(self._pending)

    def _ensure_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._heartbeat = threading.Thread(target=self._renew_loop, name=f"scope-lease-{self.name}", daemon=True)
                self._heartbeat.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                self.renew()
            except SharedStoreError as exc:  # the server is away: try again next beat
                log.warning("budget %r: could not renew leases: %s", self.name, exc)

    def renew(self) -> int:
        """Land pending settles, then extend the lease of every hold this process has open or
        pending (the heartbeat does this); returns how many holds were renewed. A settle that
        cannot land yet stays pending and does not stop the renewal."""
        with self._lock:
            pending = dict(self._pending)
        failure: SharedStoreError | None = None
        for key, (held, entry) in pending.items():
            try:
                self._land(key, held, entry)
            except SharedStoreError as exc:  # the server is away: try again next beat
                failure = exc
                break
            with self._lock:
                self._pending.pop(key, None)
        if failure is not None:
            log.warning("budget %r: %d settle(s) still pending: %s", self.name, self.pending_settles, failure)
        with self._lock:
            ids = [*self._open, *self._pending]
        if not ids:
            return 0
        return self._heartbeat_session.run(
            f"renewing leases on budget {self.name!r}",
            lambda c: c.execute(
                "UPDATE scope_holds SET expires_at = clock_timestamp() + %s * interval '1 second' WHERE id = ANY(%s)",
                (self.lease_s, ids),
            ).rowcount,
        )

    def close(self) -> None:
        """Land pending settles if the server is there, stop renewing and close the connections
        (holds still open then lapse after their lease). A settle that still cannot land is
        dead-lettered and counted as spent here, never dropped."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        try:
            self.renew()
        except SharedStoreError as exc:
            log.warning("budget %r: could not renew leases at close: %s", self.name, exc)
        with self._lock:
            left, self._pending = dict(self._pending), {}
        for key, (held, entry) in left.items():
            self._dead_letter(key, held, entry, "the database could not be reached before close()", False)
        self._session.close()
        self._heartbeat_session.close()

    def __enter__(self) -> "PostgresLedger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
