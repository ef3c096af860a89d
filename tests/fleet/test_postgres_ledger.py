"""The shared ledger on a real PostgreSQL server: the same interface as `Ledger`, exact and never
overdrawn under many processes, holds of a killed process released after their lease, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import CARDS

from scope_shared import BudgetExceeded, Ledger, Router
from scope_shared.errors import InvalidBudgetError, InvalidUsageError, ReservationError, SharedStoreError
from scope_shared.budget import BaseLedger
from scope_shared.budget.postgres_ledger import PostgresLedger
from scope_shared.calls import RoutedCall, Usage
from scope_shared.postgres import Timeouts
from scope_shared.budget.settings import Settings, settings_for_call

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[postgres]'; the test extra has it)")

WORKER = str(Path(__file__).with_name("fleet_worker.py"))


def spawn(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_same_interface_as_the_in_process_ledger(pg_url):
    ledger = Ledger.connect(pg_url, "chain", budget=1.0)
    assert isinstance(ledger, BaseLedger) and ledger.budget == 1.0 and ledger.mode == "raise"  # a cap by default
    r = ledger.reserve(0.3)
    assert ledger.reserved == pytest.approx(0.3) and ledger.remaining == pytest.approx(0.7)
    entry = r.settle(0.25, model="strong", input_tokens=10, output_tokens=20)
    assert entry.cost == 0.25 and entry.expected_cost == 0.3
    with pytest.raises(ReservationError, match="already settled"):
        r.settle(0.25)
    ledger.reserve(0.5).cancel()
    ledger.charge(0.1, model="cheap")
    with pytest.raises(BudgetExceeded, match="cannot hold"):
        ledger.reserve(0.66)
    with pytest.raises(InvalidUsageError):
        ledger.reserve(-1.0)
    assert ledger.spent == pytest.approx(0.35) and ledger.reserved == 0 and ledger.calls == 2
    s = ledger.summary()
    assert s["per_model"] == {"cheap": {"calls": 1, "cost": 0.1}, "strong": {"calls": 1, "cost": 0.25}}
    assert [e.model for e in ledger.entries] == ["strong", "cheap"]
    assert ledger.entries[0].input_tokens == 10
    ledger.close()


def test_named_budgets_are_shared_and_kept_apart(pg_url):
    team_a = Ledger.connect(pg_url, "team-a", budget=2.0)
    team_b = Ledger.connect(pg_url, "team-b", budget=None)
    other_process_view = Ledger.connect(pg_url, "team-a")  # settings read from the database
    assert other_process_view.budget == 2.0 and other_process_view.mode == "raise"
    team_a.charge(0.5)
    team_b.charge(7.0)
    assert other_process_view.spent == 0.5 and other_process_view.remaining == 1.5
    assert team_b.remaining == float("inf") and team_b.spent == 7.0
    with pytest.raises(SharedStoreError, match="other settings.*budget=3.0 \\(stored: 2.0\\)"):
        Ledger.connect(pg_url, "team-a", budget=3.0)
    Ledger.connect(pg_url, "team-a", budget=3.0, reconfigure=True)
    assert Ledger.connect(pg_url, "team-a").remaining == 2.5
    with pytest.raises(SharedStoreError, match="no budget named 'typo'.*budget=USD"):
        Ledger.connect(pg_url, "typo")


def test_a_period_starts_with_nothing_spent(pg_url):
    ledger = Ledger.connect(pg_url, "3-seconds", budget=1.0, period=3.0)
    while time.time() % 3.0 > 1.0:  # early in a period, so the next two calls fall in it
        time.sleep(0.05)
    ledger.charge(0.4, model="m")
    assert ledger.spent == pytest.approx(0.4)
    time.sleep(3.0 - time.time() % 3.0 + 0.05)  # the next period
    assert ledger.spent == 0 and ledger.remaining == 1.0 and ledger.calls == 0 and ledger.entries == []
    ledger.charge(0.1, model="m")
    assert ledger.summary()["per_model"] == {"m": {"calls": 1, "cost": 0.1}}
    daily = Ledger.connect(pg_url, "daily", budget=5.0, period="daily")
    assert daily.period_s == 86400 and daily.summary()["period_start"].endswith("T00:00:00+00:00")
    with pytest.raises(InvalidBudgetError, match="period"):
        Ledger.connect(pg_url, "bad", budget=1.0, period="fortnightly")


def test_routed_calls_hold_and_settle_on_the_shared_budget(pg_url, history, embedder):
    router = Router(CARDS, history, embedder=embedder)
    ledger = Ledger.connect(pg_url, "router", budget=0.01, mode="raise")
    call = RoutedCall.plan(router, "code question number 3", settings_for_call(Settings.read(ledger=ledger)))
    model = next(call.models_to_try())
    assert ledger.reserved == pytest.approx(call.decision.estimates[model].expected_cost)
    record = call.succeeded(model, Usage(input_tokens=5, output_tokens=90))
    assert ledger.reserved == 0 and ledger.spent == pytest.approx(record.cost)
    assert ledger.entries[0].info["call_id"] == record.call_id


def test_four_processes_x_500_reservations_exact_spend_never_overdrawn(pg_url):
    budget = 1.5  # room for about two thirds of what 2,000 calls would hold
    Ledger.connect(pg_url, "shared", budget=budget, mode="raise").close()
    watcher = Ledger.connect(pg_url, "shared")
    peak = [0.0]
    done = threading.Event()

    def watch() -> None:  # committed spend plus live holds, sampled all through the run
        while not done.is_set():
            s = watcher.summary()
            peak[0] = max(peak[0], s["spent"] + s["reserved"])

    t = threading.Thread(target=watch)
    t.start()
    procs = [spawn("reserve", pg_url, "shared", 500, 8, seed) for seed in range(4)]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        reports.append(json.loads(out))
    done.set()
    t.join()
    settled = [Decimal(c) for r in reports for c in r["settled"]]
    refused = sum(r["refused"] for r in reports)
    assert len(settled) + refused + sum(r["cancelled"] for r in reports) == 2000
    assert refused > 0  # the budget did run out
    assert Decimal(repr(watcher.spent)) == sum(settled)  # exact: no update lost, none counted twice
    assert watcher.calls == len(settled) and watcher.reserved == 0
    assert watcher.spent <= budget and peak[0] <= budget + 1e-12
    with psycopg.connect(pg_url) as conn:  # the database's own sum of the entries agrees, exactly
        total = conn.execute("SELECT sum(cost) FROM scope_ledger_entries WHERE budget = 'shared'").fetchone()[0]
    assert total == sum(settled)


def test_kill_9_releases_holds_after_the_lease_and_not_before(pg_url):
    lease = 6.0
    ledger = Ledger.connect(pg_url, "leased", budget=1.0, mode="raise")
    holder = spawn("hold", pg_url, "leased", 4, 0.2, lease)
    try:
        assert holder.stdout.readline().startswith("held"), holder.stderr.read()
        assert ledger.reserved == pytest.approx(0.8)
        time.sleep(2 * lease)  # a live holder renews its leases
        assert ledger.reserved == pytest.approx(0.8)
        with pytest.raises(BudgetExceeded):
            ledger.reserve(0.5)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        deadline = time.monotonic() + 10 * lease
        while ledger.reserved > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ledger.reserved == 0
        ledger.reserve(1.0).settle(0.9)  # the whole budget is free again
        assert ledger.spent == pytest.approx(0.9)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_hold_renewed_by_its_own_process_outlives_the_lease(pg_url):
    ledger = Ledger.connect(pg_url, "renewed", budget=1.0, lease_s=3.0)
    r = ledger.reserve(0.4)
    time.sleep(7.0)
    assert ledger.reserved == pytest.approx(0.4)
    r.settle(0.3)
    assert ledger.reserved == 0 and ledger.spent == pytest.approx(0.3) and ledger.open_holds == 0
    ledger.close()


def test_clear_errors_for_bad_urls_dead_servers_and_other_schema_versions(pg_url, postgres_server):
    with pytest.raises(SharedStoreError, match="not a PostgreSQL URL"):
        Ledger.connect("mysql://localhost/db", budget=1.0)
    with pytest.raises(SharedStoreError, match="cannot connect to PostgreSQL at scope@127.0.0.1:1/x"):
        Ledger.connect("postgresql://scope:secret@127.0.0.1:1/x", budget=1.0)
    try:
        Ledger.connect("postgresql://scope:secret@127.0.0.1:1/x", budget=1.0)
    except SharedStoreError as exc:
        assert "secret" not in str(exc)
    missing_db = pg_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(SharedStoreError, match="no_such_db"):
        Ledger.connect(missing_db, budget=1.0)
    Ledger.connect(pg_url, "x", budget=1.0).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE scope_schema SET version = 99 WHERE component = 'ledger'")
    with pytest.raises(SharedStoreError, match="schema version 99; this library uses version 1"):
        Ledger.connect(pg_url, "x")


def test_a_locked_budget_times_out_instead_of_hanging(pg_url):
    ledger = PostgresLedger(pg_url, "locked", budget=1.0, timeouts=Timeouts(lock_s=1.0))
    with psycopg.connect(pg_url) as blocker:  # another session holds the budget's row lock
        blocker.execute("SELECT * FROM scope_budgets WHERE name = 'locked' FOR UPDATE")
        with pytest.raises(SharedStoreError, match="lock wait timed out reserving"):
            ledger.reserve(0.1)
    ledger.reserve(0.1).settle(0.1)  # the next call works again
    assert ledger.spent == pytest.approx(0.1)


def test_a_settle_cut_off_by_an_outage_is_retried_and_charges_once(pg_url):
    ledger = Ledger.connect(pg_url, "retry", budget=1.0)
    r = ledger.reserve(0.2)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the server drops every scope session
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = 'scope-router' AND pid <> pg_backend_pid()")
    r.settle(0.15)  # the database is unreachable for this call: the settle waits to be retried
    assert ledger.pending_settles == 1 and not r.open
    assert ledger.reserved == pytest.approx(0.2) and ledger.spent == 0  # still held, not yet charged
    ledger.renew()  # what the heartbeat does every lease_s / 3
    ledger.renew()  # and again: a settle lands once
    assert ledger.pending_settles == 0
    assert ledger.spent == pytest.approx(0.15) and ledger.calls == 1 and ledger.reserved == 0
    ledger.close()
