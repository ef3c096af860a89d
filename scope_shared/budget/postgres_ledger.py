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
  already written for its hold and charges nothing twice.

A capping budget is never overdrawn while real costs stay within what was held: a hold is
granted only if it fits beside every live hold and everything spent, checked and inserted under
the budget row's lock. Each call is bounded by the connection's timeouts
(`scope_shared.postgres.Timeouts`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Hashable
from decimal import Decimal
from typing import Any

from scope_shared.budget.base import BaseLedger, BudgetMode, LedgerEntry, LedgerState, check_amount, normalize_mode
from scope_shared.budget.postgres_sql import DDL, VERSION
from scope_shared.errors import InvalidKnobError, InvalidUsageError, SharedStoreError
from scope_shared.postgres import Session, Timeouts, describe, ensure_schema

log = logging.getLogger(__name__)

PERIODS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0}
_STORED: Any = object()  # "use what the database has"
_STATUS = ("SELECT spent, reserved, calls, overshoot_calls, overshoot_excess, max_ratio, period_start "
           "FROM scope_budget_status(%s)")


def _money(x: float) -> Decimal:
    """A float cost as the exact decimal of its shortest repr (0.1 -> Decimal('0.1'))."""
    return Decimal(repr(float(x)))


def _period_seconds(period: float | str | None) -> float | None:
    if period is None:
        return None
    if isinstance(period, str):
        if period not in PERIODS:
            raise InvalidKnobError(f"period must be one of {', '.join(PERIODS)} or seconds, got {period!r}")
        return PERIODS[period]
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not math.isfinite(period) or period <= 0:
        raise InvalidKnobError(f"period must be a positive number of seconds, got {period!r}")
    return float(period)


def _wanted(budget: Any, mode: Any, period: Any) -> dict[str, Any]:
    """The settings the caller asked for (validated), leaving out those to read from the database."""
    wanted: dict[str, Any] = {}
    if budget is not _STORED:
        if budget is not None:
            try:
                budget = check_amount(budget, "budget")
            except InvalidUsageError as exc:
                raise InvalidKnobError(str(exc)) from None
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
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidKnobError(f"a shared budget needs a non-empty name, got {name!r}")
        if isinstance(lease_s, bool) or not isinstance(lease_s, (int, float)) or not math.isfinite(lease_s) or lease_s <= 0:
            raise InvalidKnobError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        wanted = _wanted(budget, mode, period)
        self.url, self.lease_s = url, float(lease_s)
        self.owner = uuid.uuid4().hex  # this process's holds, for inspection
        self._session = Session(url, timeouts)
        self._heartbeat_session = Session(url, timeouts)
        self._lock = threading.Lock()
        self._open: dict[int, float] = {}  # hold id -> amount, renewed by the heartbeat
        self._pending: dict[int, tuple[float, LedgerEntry]] = {}  # settles to retry
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
            self._settle_in_db(key, held, entry)  # type: ignore[arg-type]
        except SharedStoreError as exc:
            log.warning("budget %r: %s; the settle is retried in the background", self.name, exc)
            with self._lock:
                self._pending[key] = (held, entry)  # type: ignore[index]
        return True

    def _settle_in_db(self, hold_id: int | None, held: float | None, e: LedgerEntry) -> bool:
        return self._session.run(
            f"charging budget {self.name!r}",
            lambda c: c.execute(
                "SELECT scope_settle(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (self.name, hold_id, None if held is None else _money(held), _money(e.cost), e.model,
                 e.input_tokens, e.output_tokens, e.expected_cost, json.dumps(e.info, default=str), e.time),
            ).fetchone()[0],
        )

    def _record(self, entry: LedgerEntry) -> None:
        self._settle_in_db(None, None, entry)

    def _state(self) -> LedgerState:
        row = self._session.run(f"reading budget {self.name!r}", lambda c: c.execute(_STATUS, (self.name,)).fetchone())
        return LedgerState(spent=float(row[0]), reserved=float(row[1]), calls=int(row[2]),
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
        pending (the heartbeat does this); returns how many holds were renewed."""
        with self._lock:
            pending = dict(self._pending)
        for key, (held, entry) in pending.items():
            self._settle_in_db(key, held, entry)  # raises while the server is away
            with self._lock:
                self._pending.pop(key, None)
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
        (holds still open then lapse after their lease)."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        try:
            self.renew()
        except SharedStoreError as exc:
            log.warning("budget %r: %d settle(s) could not be written: %s", self.name, self.pending_settles, exc)
        self._session.close()
        self._heartbeat_session.close()

    def __enter__(self) -> "PostgresLedger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
