"""A `Ledger` shared by many processes and machines, kept in PostgreSQL (``Ledger.connect(url)``).

Same interface as the in-process `Ledger` (reserve, settle, cancel, charge, remaining, spent,
summary), so routers, `RoutedCall` and both integrations use it unchanged. What it adds:

- **named budgets**: every process that connects with the same ``name`` spends from one budget
  (a chain's, a team's). The first connection creates it (``budget=`` is then required, ``None``
  for an unlimited, accounting-only one); later ones read its settings, and refuse settings that
  differ unless ``reconfigure=True``.
- **periods**: ``period="daily"`` (or ``"hourly"``, ``"weekly"``, or seconds) starts every period,
  aligned to UTC midnight for days, with nothing spent.
- **leases**: every hold carries a lease (``lease_s``). While the process lives, a background thread
  renews its open holds every ``lease_s / 3``; a process killed mid-call stops renewing, and its
  holds stop counting once the lease ends.
- **exact money**: costs are stored as exact decimals (each float's shortest repr), so the total of
  many processes' charges is exactly the sum of the costs charged.

A raise-mode budget is never overdrawn while real costs stay within what was held: a reservation
succeeds only if it fits beside every live hold and everything spent, checked and inserted under
the budget row's lock. The methods block for one round trip (about a millisecond on a local
network); each is bounded by the connection's timeouts (`scope_shared.postgres.Timeouts`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from decimal import Decimal
from typing import Any

from scope_shared.budget.ledger import Ledger, LedgerEntry, OnExhausted, Reservation
from scope_shared.budget.postgres_sql import DDL, VERSION
from scope_shared.errors import BudgetExceeded, InvalidKnobError, SharedStoreError
from scope_shared.postgres import Session, Timeouts, describe, ensure_schema

log = logging.getLogger(__name__)

PERIODS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0}
_STORED: Any = object()  # "use what the database has"


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


class SharedReservation(Reservation):
    """A hold recorded in the database (``hold_id``), renewed while this process lives."""

    def __init__(self, ledger: "PostgresLedger", amount: float, hold_id: int) -> None:
        super().__init__(ledger, amount)
        self.hold_id = hold_id


class PostgresLedger(Ledger):
    """A named budget in PostgreSQL; see the module docstring. Create with `Ledger.connect`."""

    def __init__(
        self,
        url: str,
        name: str = "default",
        *,
        budget: float | None = _STORED,
        on_exhausted: OnExhausted | None = None,
        period: float | str | None = _STORED,
        lease_s: float = 60.0,
        reconfigure: bool = False,
        timeouts: Timeouts | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidKnobError(f"a shared budget needs a non-empty name, got {name!r}")
        if isinstance(lease_s, bool) or not isinstance(lease_s, (int, float)) or not math.isfinite(lease_s) or lease_s <= 0:
            raise InvalidKnobError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        wanted: dict[str, Any] = {}
        if budget is not _STORED:
            if budget is not None:
                try:
                    budget = self._check_cost(budget)
                except InvalidKnobError:
                    raise InvalidKnobError(f"budget must be a finite number >= 0, got {budget!r}") from None
            wanted["budget"] = budget
        if on_exhausted is not None:
            if on_exhausted not in ("cheapest", "raise"):
                raise InvalidKnobError(f"on_exhausted must be 'cheapest' or 'raise', got {on_exhausted!r}")
            wanted["on_exhausted"] = on_exhausted
        if period is not _STORED:
            wanted["period_s"] = _period_seconds(period)
        self.url = url
        self.name = name
        self.lease_s = float(lease_s)
        self.owner = uuid.uuid4().hex  # this process's holds, for the heartbeat and for inspection
        self._session = Session(url, timeouts)
        self._heartbeat_session = Session(url, timeouts)
        self._lock = threading.Lock()
        self._open: dict[int, SharedReservation] = {}
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        ensure_schema(self._session.connection(), "ledger", VERSION, DDL)
        row = self._session.run(f"opening budget {name!r}", lambda c: self._open_budget(c, wanted, reconfigure))
        self.budget = None if row[0] is None else float(row[0])
        self.on_exhausted = row[1]
        self.period_s = row[2]

    def _open_budget(self, conn: Any, wanted: dict[str, Any], reconfigure: bool) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT budget, on_exhausted, period_s FROM scope_budgets WHERE name = %s FOR UPDATE", (self.name,)
        ).fetchone()
        if row is None:
            if "budget" not in wanted:
                raise SharedStoreError(
                    f"no budget named {self.name!r} at {describe(self.url)}: pass budget=USD "
                    "(or budget=None for an unlimited one) to create it"
                )
            b = wanted["budget"]
            conn.execute(
                "INSERT INTO scope_budgets (name, budget, on_exhausted, period_s, period_start) "
                "VALUES (%s, %s, %s, %s, scope_period_start(%s, clock_timestamp()))",
                (self.name, None if b is None else _money(b), wanted.get("on_exhausted", "cheapest"),
                 wanted.get("period_s"), wanted.get("period_s")),
            )
            return (b, wanted.get("on_exhausted", "cheapest"), wanted.get("period_s"))
        stored = {"budget": None if row[0] is None else float(row[0]), "on_exhausted": row[1], "period_s": row[2]}
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
                "UPDATE scope_budgets SET budget = %s, on_exhausted = %s, period_s = %s WHERE name = %s",
                (None if stored["budget"] is None else _money(stored["budget"]), stored["on_exhausted"],
                 stored["period_s"], self.name),
            )
        return (stored["budget"], stored["on_exhausted"], stored["period_s"])

    def __repr__(self) -> str:
        return f"PostgresLedger(name={self.name!r}, budget={self.budget}, at={describe(self.url)!r})"

    # ---------------------------------------------------------------- reading
    def _status(self) -> tuple[float, float, int]:
        row = self._session.run(
            f"reading budget {self.name!r}",
            lambda c: c.execute("SELECT spent, reserved, calls FROM scope_budget_status(%s)", (self.name,)).fetchone(),
        )
        return float(row[0]), float(row[1]), int(row[2])

    @property
    def spent(self) -> float:
        """Spent in the current period, by every process."""
        return self._status()[0]

    @property
    def reserved(self) -> float:
        """Held for calls in flight in every process (lapsed holds excluded)."""
        return self._status()[1]

    @property
    def remaining(self) -> float:
        """Budget minus spent minus held, fleet-wide (``inf`` when unlimited)."""
        if self.budget is None:
            return math.inf
        row = self._session.run(
            f"reading budget {self.name!r}",
            lambda c: c.execute("SELECT budget - spent - reserved FROM scope_budget_status(%s)", (self.name,)).fetchone(),
        )
        return math.inf if row[0] is None else float(row[0])

    @property
    def calls(self) -> int:
        return self._status()[2]

    @property
    def entries(self) -> list[LedgerEntry]:
        """Every call settled in the current period, by every process, oldest first."""
        rows = self._session.run(
            f"reading entries of budget {self.name!r}",
            lambda c: c.execute(
                "SELECT e.cost, e.model, e.input_tokens, e.output_tokens, e.expected_cost, e.info, e.time "
                "FROM scope_ledger_entries e, scope_budget_status(%s) s "
                "WHERE e.budget = %s AND e.period_start = s.period_start ORDER BY e.id",
                (self.name, self.name),
            ).fetchall(),
        )
        return [
            LedgerEntry(cost=float(r[0]), model=r[1], input_tokens=r[2], output_tokens=r[3],
                        expected_cost=r[4], info=dict(r[5] or {}), time=r[6])
            for r in rows
        ]

    def summary(self) -> dict[str, Any]:
        """Spend per model and in total for the current period, fleet-wide (JSON-friendly)."""

        def read(c: Any) -> tuple[Any, list[Any]]:
            status = c.execute("SELECT spent, reserved, calls, period_start FROM scope_budget_status(%s)", (self.name,)).fetchone()
            per = c.execute(
                "SELECT coalesce(model, '?'), count(*), sum(cost) FROM scope_ledger_entries "
                "WHERE budget = %s AND period_start = %s GROUP BY 1 ORDER BY 1",
                (self.name, status[3]),
            ).fetchall()
            return status, per

        status, per = self._session.run(f"summarising budget {self.name!r}", read)
        spent, reserved = float(status[0]), float(status[1])
        return {
            "budget": self.budget,
            "name": self.name,
            "spent": spent,
            "reserved": reserved,
            "remaining": math.inf if self.budget is None else self.budget - spent - reserved,
            "calls": int(status[2]),
            "period_start": status[3].isoformat(),
            "per_model": {m: {"calls": int(n), "cost": float(c)} for m, n, c in per},
        }

    @property
    def open_holds(self) -> int:
        """Holds this process has open (not yet settled or cancelled)."""
        with self._lock:
            return len(self._open)

    # ---------------------------------------------------------------- writing
    def reserve(self, amount: float, force: bool = False) -> Reservation:
        """Hold ``amount`` fleet-wide; `BudgetExceeded` if it does not fit (unless ``force``)."""
        amount = self._check_cost(amount)
        hold_id, left, budget = self._session.run(
            f"reserving on budget {self.name!r}",
            lambda c: c.execute(
                "SELECT * FROM scope_reserve(%s, %s, %s, %s, %s)",
                (self.name, _money(amount), bool(force), self.owner, self.lease_s),
            ).fetchone(),
        )
        if hold_id is None:
            raise BudgetExceeded(
                f"budget {self.name!r} cannot hold ${amount:.6f}: ${float(left):.6f} left of ${float(budget):.6f}"
            )
        r = SharedReservation(self, amount, hold_id)
        with self._lock:
            self._open[hold_id] = r
        self._ensure_heartbeat()
        return r

    def charge(self, cost: float, **entry: Any) -> LedgerEntry:
        """Record a call's real cost directly (no reservation)."""
        return self._write(None, self._check_cost(cost), entry)

    def _settle(self, r: Reservation, cost: float, entry: dict[str, Any]) -> LedgerEntry:
        cost = self._check_cost(cost)
        entry.setdefault("expected_cost", r.amount)
        with self._lock:
            if not r.open:
                raise BudgetExceeded("this reservation was already settled or cancelled")
            r.open = False
        try:
            e = self._write(r, cost, entry)
        except BaseException:  # not charged: the hold stays open (and renewed), settle again later
            r.open = True
            raise
        with self._lock:
            self._open.pop(getattr(r, "hold_id", -1), None)
        return e

    def _write(self, r: Reservation | None, cost: float, entry: dict[str, Any]) -> LedgerEntry:
        e = LedgerEntry(cost=cost, **entry)
        held, _ = self._session.run(
            f"charging budget {self.name!r}",
            lambda c: c.execute(
                "SELECT * FROM scope_settle(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (self.name, getattr(r, "hold_id", None), _money(cost), e.model, e.input_tokens, e.output_tokens,
                 e.expected_cost, json.dumps(e.info, default=str), e.time),
            ).fetchone(),
        )
        if r is not None and held is None:
            log.warning("budget %r: hold %s had lapsed (lease %.0f s) before it was settled",
                        self.name, getattr(r, "hold_id", "?"), self.lease_s)
        return e

    def _release(self, r: Reservation) -> None:
        """Delete the hold; if the database cannot be reached it is no longer renewed, so it lapses."""
        with self._lock:
            if not r.open:
                return
            r.open = False
            hold_id = getattr(r, "hold_id", None)
            self._open.pop(hold_id, None)
        self._session.run(
            f"releasing a hold on budget {self.name!r}",
            lambda c: c.execute("DELETE FROM scope_holds WHERE id = %s", (hold_id,)),
        )

    # ---------------------------------------------------------------- leases
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
        """Extend the lease of every hold this process has open (the heartbeat does this); returns
        how many were still live in the database."""
        with self._lock:
            ids = list(self._open)
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
        """Stop renewing leases and close the connections (open holds then lapse after their lease)."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        self._session.close()
        self._heartbeat_session.close()

    def __enter__(self) -> "PostgresLedger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

