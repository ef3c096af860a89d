"""The shared ledger and history on a real PostgreSQL server, fed what other clients, attackers
and typos send (issue 22): settles the database refuses, bad rows, long questions, URLs of every
form. Nothing is lost, nothing hangs, no password is shown."""

from __future__ import annotations

import json
import logging
import traceback

import pytest

from scope_shared import Ledger
from scope_shared.errors import SharedStoreError

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[postgres]'; the test extra has it)")

PW = "S3cr3t-Pw"


# ---------------------------------------------------------------- the ledger
def test_a_settle_with_a_nul_byte_lands_and_other_holds_keep_being_renewed(pg_url, tmp_path):
    ledger = Ledger.connect(pg_url, "nul", budget=10.0, lease_s=3.0)
    other = ledger.reserve(0.1)  # a hold of another call, open the whole time
    bad = ledger.reserve(0.5)
    bad.settle(0.4, model="evil\x00model", info={"note": "nul \x00 inside", "x": float("nan")})
    assert ledger.pending_settles == 0
    assert ledger.spent == pytest.approx(0.4) and ledger.calls == 1
    assert [e.model for e in ledger.entries] == ["evil\ufffdmodel"]
    import time

    time.sleep(4.5)  # beyond the lease: the other hold must have been renewed meanwhile
    assert ledger.reserved == pytest.approx(0.1)
    other.settle(0.05)
    ledger.close()
    again = Ledger.connect(pg_url, "nul")
    assert again.spent == pytest.approx(0.45)
    again.close()


def test_a_settle_refused_for_good_is_dead_lettered_counted_and_never_retried(pg_url, tmp_path, caplog):
    dead = tmp_path / "dead.jsonl"
    ledger = Ledger.connect(pg_url, "refused", budget=10.0, dead_letter=dead)
    hold = ledger.reserve(0.5)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # another client's change: the ledger refuses this one's entries
        conn.execute("ALTER TABLE scope_ledger_entries ADD CONSTRAINT no_cost CHECK (cost < 0.3)")
    with caplog.at_level(logging.ERROR):
        hold.settle(0.4, model="m")
    assert ledger.pending_settles == 0  # not retried forever
    assert ledger.spent == pytest.approx(0.4) and ledger.calls == 1  # counted here, never dropped
    assert len(ledger.dead_letters) == 1 and ledger.dead_letters[0]["cost"] == 0.4
    rec = json.loads(dead.read_text().splitlines()[0])
    assert rec["cost"] == 0.4 and rec["model"] == "m" and rec["charged_in_database"] is False
    ok = ledger.reserve(0.1)
    ok.settle(0.1)  # other settles still land
    assert ledger.spent == pytest.approx(0.5)
    ledger.close()


def test_settles_left_pending_at_close_are_dead_lettered_not_dropped(pg_url, postgres_server, tmp_path):
    dead = tmp_path / "dead.jsonl"
    ledger = Ledger.connect(pg_url, "away", budget=10.0, dead_letter=dead)
    hold = ledger.reserve(0.5)
    ledger._session._conn.close()  # noqa: SLF001 - the connection drops
    ledger._session.url = ledger._session.url.replace(str(postgres_server.port), "1")  # noqa: SLF001 - and the server is gone
    hold.settle(0.3, model="m")
    assert ledger.pending_settles == 1
    ledger.close()
    assert ledger.pending_settles == 0 and len(ledger.dead_letters) == 1
    assert json.loads(dead.read_text())["cost"] == 0.3
    assert ledger.dead_letters[0]["charged_in_database"] is False


# ---------------------------------------------------------------- passwords
URLS = {
    "bad percent-escape": f"postgresql://scope:{PW}%zz@127.0.0.1:1/db",
    "unencoded space": f"postgresql://scope:{PW} x@127.0.0.1:1/db",
    "IPv6 bracket error": f"postgresql://scope:{PW}@[::1:1/db",
    "postgresql+psycopg": f"postgresql+psycopg://scope:{PW}@127.0.0.1:1/db",
    "keyword conninfo": f"host=127.0.0.1 port=1 password={PW} dbname=x",
    "quoted keyword conninfo": f"host=127.0.0.1 password='{PW} x' dbname=x",
    "query parameter": f"postgresql://scope@127.0.0.1:1/db?password={PW}",
    "server down": f"postgresql://scope:{PW}@127.0.0.1:1/db",
    "bad port": f"postgresql://scope:{PW}@127.0.0.1:99999/db",
    "at sign in password": f"postgresql://scope:{PW}@x@127.0.0.1:1/db",
}


@pytest.mark.parametrize("form", list(URLS))
def test_passwords_are_redacted_in_every_error_whatever_the_url_form(form):
    from scope_shared import History

    url = URLS[form]
    for connect in (lambda: Ledger.connect(url, budget=1.0), lambda: History.connect(url, dim=8)):
        with pytest.raises(SharedStoreError) as info:
            connect()
        shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
        assert PW not in shown, shown
        assert "S3cr3t" not in shown, shown
