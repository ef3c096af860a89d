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


# ---------------------------------------------------------------- the shared history
import numpy as np  # noqa: E402
from conftest import DIM, toy_embedder, toy_history  # noqa: E402

from scope_shared import History, Outcome  # noqa: E402
from scope_shared.history.postgres_transfer import import_directory  # noqa: E402


@pytest.fixture
def toy_url(pg_url, tmp_path) -> str:
    toy_history(per_topic=3).save(tmp_path / "toy")
    import_directory(tmp_path / "toy", pg_url, "toy", follow=False).close()
    return pg_url


def _vec(values) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def _raw_rows(url: str, name: str = "toy", *, drop_checks: bool = True) -> None:
    """What another client (an old version, a bug, an attacker) writes straight into the tables:
    a question with a NaN vector, one of the wrong size, outcomes with correct NaN and 7."""
    with psycopg.connect(url, autocommit=True) as conn:
        if drop_checks:  # as on a database whose constraints were dropped (or written before they existed)
            conn.execute("ALTER TABLE scope_outcomes DROP CONSTRAINT IF EXISTS scope_outcomes_valid")
            conn.execute("DROP TRIGGER IF EXISTS scope_check_question ON scope_questions")
        n_q, n_o = conn.execute("SELECT n_questions, n_outcomes FROM scope_histories WHERE name = %s", (name,)).fetchone()
        nan = [float("nan")] * DIM
        conn.execute("INSERT INTO scope_questions (history, qid, text, benchmark, embedding) VALUES (%s, %s, %s, NULL, %s)",
                     (name, n_q, "nan vector question", _vec(nan)))
        conn.execute("INSERT INTO scope_questions (history, qid, text, benchmark, embedding) VALUES (%s, %s, %s, NULL, %s)",
                     (name, n_q + 1, "short vector question", _vec([1.0] * (DIM - 3))))
        for k, correct in enumerate((float("nan"), 7.0)):
            conn.execute("INSERT INTO scope_outcomes (history, seq, qid, model, correct, source) VALUES (%s, %s, 0, 'cheap', %s, 'x')",
                         (name, n_o + k, correct))
        conn.execute("UPDATE scope_histories SET n_questions = %s, n_outcomes = %s WHERE name = %s", (n_q + 2, n_o + 2, name))
        conn.execute("SELECT pg_notify('scope_history', %s)", (name,))


def test_bad_rows_from_another_client_are_skipped_and_reported_and_nothing_stops(toy_url):
    emb = toy_embedder()
    follower = History.connect(toy_url, "toy", poll_s=0.2)
    n_q, n_o = len(follower), follower.n_records
    _raw_rows(toy_url)
    fresh = History.connect(toy_url, "toy", follow=False)  # a new connection works (before: ValueError)
    assert len(fresh) == n_q + 2 and fresh.n_records == n_o and fresh.n_skipped_rows == 4
    assert any("NaN" in r for r in fresh.skipped_rows) and any("correct=7" in r for r in fresh.skipped_rows)
    fresh.add("math a brand new question", emb.embed_one("math a brand new question"),
              [Outcome(model="cheap", correct=1.0)])  # writes work (before: every write failed)
    assert follower.wait_for_outcomes(n_o + 3, timeout_s=10)  # the follower goes on (before: frozen)
    assert "math a brand new question" in follower and follower.n_records == n_o + 1
    assert follower.n_skipped_rows == 4
    follower.add_outcomes(follower.question_id("math a brand new question"), [Outcome(model="strong", correct=0.0)])
    third = History.connect(toy_url, "toy", follow=False)
    assert third.n_records == follower.n_records == n_o + 2
    assert third.model_arrays("strong").scores.tolist() == follower.model_arrays("strong").scores.tolist()
    # the bad questions keep their ids with placeholders that hold no outcomes (so are no model's anchors)
    assert third.text(n_q).startswith("[unreadable row") and third.text(n_q + 1).startswith("[unreadable row")
    assert not np.any(third.embeddings[n_q:n_q + 2])
    assert all(not set(third.model_arrays(m).ids.tolist()) & {n_q, n_q + 1} for m in third.models)
    follower.close()


@pytest.mark.parametrize("row", ["nan embedding", "short embedding", "correct nan", "correct 7", "negative tokens",
                                 "infinite latency", "blank model"])
def test_the_schema_refuses_bad_rows_from_any_client(toy_url, row):
    with psycopg.connect(toy_url, autocommit=True) as conn:
        n_q, n_o = conn.execute("SELECT n_questions, n_outcomes FROM scope_histories WHERE name = 'toy'").fetchone()
        q = "INSERT INTO scope_questions (history, qid, text, embedding) VALUES ('toy', %s, %s, %s)"
        o = ("INSERT INTO scope_outcomes (history, seq, qid, model, correct, output_tokens, latency_s, source) "
             "VALUES ('toy', %s, 0, %s, %s, %s, %s, 'x')")
        statement = {
            "nan embedding": (q, (n_q, "nan q", _vec([float("nan")] * DIM))),
            "short embedding": (q, (n_q, "short q", _vec([1.0] * (DIM - 1)))),
            "correct nan": (o, (n_o, "cheap", float("nan"), None, None)),
            "correct 7": (o, (n_o, "cheap", 7.0, None, None)),
            "negative tokens": (o, (n_o, "cheap", 1.0, -5.0, None)),
            "infinite latency": (o, (n_o, "cheap", 1.0, None, float("inf"))),
            "blank model": (o, (n_o, "  ", 1.0, None, None)),
        }[row]
        with pytest.raises(psycopg.errors.IntegrityError):
            conn.execute(*statement)


def test_long_questions_are_stored_and_read_back(toy_url):
    emb = toy_embedder()
    h = History.connect(toy_url, "toy", follow=False)
    long_text = "math " + " ".join(f"w{i:05d}" for i in range(2000))  # ~14 KB, above a btree entry's limit
    qid = h.add(long_text, emb.embed_one("math long"), [Outcome(model="cheap", correct=1.0)])
    again = History.connect(toy_url, "toy", follow=False)
    assert again.text(qid) == long_text
    with pytest.raises(SharedStoreError):  # still unique per history (through its hash)
        with psycopg.connect(toy_url, autocommit=True) as conn:
            from scope_shared.postgres import translate_errors

            with translate_errors("inserting a duplicate"):
                conn.execute("INSERT INTO scope_questions (history, qid, text, embedding) VALUES ('toy', %s, %s, %s)",
                             (len(again), long_text, _vec([1.0] + [0.0] * (DIM - 1))))


def _tables(url: str) -> tuple:
    with psycopg.connect(url, autocommit=True) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("scope_histories", "scope_questions", "scope_outcomes", "scope_cards"))


def test_import_is_all_or_nothing_and_names_the_real_cause(pg_url, tmp_path):
    toy_history(per_topic=3).save(tmp_path / "toy")
    History.connect(pg_url, "other", dim=DIM, follow=False).close()  # creates the tables
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a rule of this database refuses one model's outcomes
        conn.execute("ALTER TABLE scope_outcomes ADD CONSTRAINT no_strong CHECK (model <> 'strong')")
    before = _tables(pg_url)
    with pytest.raises(SharedStoreError) as info:
        import_directory(tmp_path / "toy", pg_url, "toy", follow=False)
    assert "no_strong" in str(info.value) and "connection" not in str(info.value)
    assert _tables(pg_url) == before  # no cards without questions, no questions without outcomes


def test_an_import_over_a_database_limit_blames_the_limit_not_the_connection(pg_url, tmp_path):
    h = toy_history(per_topic=2)
    rng = np.random.default_rng(0)
    bench = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), 9000))  # incompressible, over a btree entry
    h.add("math with a huge benchmark name", np.ones(DIM, np.float32), [Outcome(model="cheap", correct=1.0)], benchmark=bench)
    h.save(tmp_path / "h")
    History.connect(pg_url, "other", dim=DIM, follow=False).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX by_benchmark ON scope_questions (benchmark)")
    with pytest.raises(SharedStoreError) as info:
        import_directory(tmp_path / "h", pg_url, "h", follow=False)
    assert "lost the PostgreSQL connection" not in str(info.value)
    assert "index row" in str(info.value) and "54000" in str(info.value)


V1_DDL = """
CREATE TABLE scope_histories (name text PRIMARY KEY, dim integer NOT NULL CHECK (dim > 0), embedder text,
    index_spec jsonb, n_questions integer NOT NULL DEFAULT 0, n_outcomes bigint NOT NULL DEFAULT 0,
    n_replaced bigint NOT NULL DEFAULT 0, cards_version bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE scope_questions (history text NOT NULL REFERENCES scope_histories (name) ON DELETE CASCADE,
    qid integer NOT NULL, text text NOT NULL, benchmark text, embedding bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (history, qid), UNIQUE (history, text));
CREATE TABLE scope_outcomes (history text NOT NULL, seq bigint NOT NULL, qid integer NOT NULL, model text NOT NULL,
    correct double precision NOT NULL, output_tokens double precision, input_tokens double precision,
    latency_s double precision, source text NOT NULL, call_id text, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (history, seq), FOREIGN KEY (history, qid) REFERENCES scope_questions (history, qid) ON DELETE CASCADE);
CREATE UNIQUE INDEX scope_outcomes_call ON scope_outcomes (history, call_id) WHERE call_id IS NOT NULL;
CREATE TABLE scope_replacements (history text NOT NULL REFERENCES scope_histories (name) ON DELETE CASCADE,
    seq bigint NOT NULL, outcome_seq bigint NOT NULL, correct double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (history, seq));
CREATE TABLE scope_cards (history text NOT NULL REFERENCES scope_histories (name) ON DELETE CASCADE,
    name text NOT NULL, card jsonb NOT NULL, PRIMARY KEY (history, name));
CREATE TABLE scope_schema (component text PRIMARY KEY, version integer NOT NULL);
INSERT INTO scope_schema VALUES ('history', 1);
INSERT INTO scope_histories (name, dim, embedder, index_spec, n_questions, n_outcomes) VALUES ('old', 8, 'toy', 'null', 2, 2);
"""


def test_a_version_1_database_is_migrated_in_place(pg_url):
    emb = toy_embedder()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(V1_DDL)
        for qid, text in enumerate(("math one", "code two")):
            conn.execute("INSERT INTO scope_questions (history, qid, text, embedding) VALUES ('old', %s, %s, %s)",
                         (qid, text, emb.embed_one(text).astype("<f4").tobytes()))
        conn.execute("INSERT INTO scope_outcomes (history, seq, qid, model, correct, source) VALUES "
                     "('old', 0, 0, 'cheap', 1.0, 'benchmark'), ('old', 1, 1, 'cheap', 9.0, 'benchmark')")
    h = History.connect(pg_url, "old", follow=False)  # migrates to version 2
    assert len(h) == 2 and h.n_records == 1 and h.n_skipped_rows == 1  # the old bad row is left out, reported
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM scope_schema WHERE component = 'history'").fetchone()[0] == 2
    long_text = "math " + "x" * 9000
    h.add(long_text, emb.embed_one("math long"), [Outcome(model="cheap", correct=0.0)])
    again = History.connect(pg_url, "old", follow=False)
    assert long_text in again and again.n_records == 2
    with psycopg.connect(pg_url, autocommit=True) as conn, pytest.raises(psycopg.errors.IntegrityError):
        conn.execute("INSERT INTO scope_outcomes (history, seq, qid, model, correct, source) VALUES ('old', 9, 0, 'm', 'NaN', 's')")
