"""The shared history on a real PostgreSQL server: replicas in other processes see each other's
feedback in their next decisions; export/import round-trips the directory store; clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import CARDS, toy_embedder, toy_history

from scope_shared import History, ModelCard, Outcome, Router, ScopeError
from scope_shared.errors import SharedStoreError
from scope_shared.history.postgres_store import PostgresHistory
from scope_shared.history.postgres_transfer import export_directory, import_directory

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[postgres]'; the test extra has it)")

WORKER = str(Path(__file__).with_name("fleet_worker.py"))


@pytest.fixture
def shared_url(pg_url, tmp_path) -> str:
    """A database holding the toy history as ``toy``."""
    toy_history().save(tmp_path / "toy")
    import_directory(tmp_path / "toy", pg_url, "toy", follow=False).close()
    return pg_url


class Replica:
    """A router over the shared history in its own process (fleet_worker.py replica)."""

    def __init__(self, url: str, fresh: bool) -> None:
        self.proc = subprocess.Popen([sys.executable, WORKER, "replica", url, "toy", "1" if fresh else "0"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


@pytest.mark.parametrize("fresh_reads", [True, False], ids=["fresh-reads", "following"])
def test_two_replicas_each_see_the_others_feedback_in_their_next_decisions(shared_url, fresh_reads):
    a, b = Replica(shared_url, fresh_reads), Replica(shared_url, fresh_reads)
    try:
        q_a, q_b = "math question from a user", "code question from a user"
        before_a, before_b = a.ask(f"estimate {q_b}"), b.ask(f"estimate {q_a}")
        assert before_b["p"]["strong"] > 0.9 and before_a["p"]["mid"] > 0.9

        n = a.ask(f"record strong 0 {q_a}")["outcomes"]  # replica a: strong got its question wrong
        if not fresh_reads:
            assert b.ask(f"wait {n}")["arrived"]
        after_b = b.ask(f"estimate {q_a}")
        assert after_b["outcomes"] == n and after_b["p"]["strong"] < before_b["p"]["strong"]
        assert after_b["p"] == a.ask(f"estimate {q_a}")["p"]  # both replicas now estimate alike

        n = b.ask(f"record mid 0 {q_b}")["outcomes"]  # and the other way round
        if not fresh_reads:
            assert a.ask(f"wait {n}")["arrived"]
        after_a = a.ask(f"estimate {q_b}")
        assert after_a["p"]["mid"] < before_a["p"]["mid"] and after_a["p"] == b.ask(f"estimate {q_b}")["p"]
    finally:
        a.close()
        b.close()
    h = History.connect(shared_url, "toy", follow=False)
    feedback = [r for r in h.records if r.outcome.source == "feedback"]
    assert [(h.text(r.question_id), r.outcome.model) for r in feedback] == [(q_a, "strong"), (q_b, "mid")]


def test_export_import_round_trip_the_directory_store(pg_url, tmp_path):
    local = toy_history()
    local.add("trivia question with latency", toy_embedder().embed_one("trivia question with latency"),
              [Outcome(model="cheap", correct=0.5, output_tokens=7, input_tokens=3, latency_s=0.25, source="live")])
    local.save(tmp_path / "in")
    shared = import_directory(tmp_path / "in", pg_url, "copy")
    export_directory(pg_url, tmp_path / "out", "copy")
    back = History.load(tmp_path / "out")
    assert len(back) == len(local) == len(shared) and back.models == local.models
    assert list(back.records) == list(local.records)
    assert [back.text(i) for i in range(len(back))] == [local.text(i) for i in range(len(local))]
    assert back.benchmarks == local.benchmarks
    np.testing.assert_allclose(back.embeddings, local.embeddings, atol=1e-6)
    assert back.cards == local.cards and back.embedder_name == "toy"
    import_directory(tmp_path / "in", pg_url, "copy", follow=False)  # merging again adds outcomes, not questions
    again = History.connect(pg_url, "copy", follow=False)
    assert len(again) == len(local) and again.n_records == 2 * local.n_records
    shared.close()


def test_concurrent_writers_in_one_process_lose_nothing_and_agree(shared_url):
    writers = [History.connect(shared_url, "toy") for _ in range(3)]
    emb = toy_embedder()
    base = writers[0].n_records

    def write(i: int) -> None:
        h = writers[i % 3]
        text = f"trivia question live {i % 7}"
        h.add(text, emb.embed_one(text), [Outcome(model="cheap", correct=float(i % 2), source="feedback")])

    with ThreadPoolExecutor(6) as ex:
        list(ex.map(write, range(60)))
    for h in writers:
        assert h.wait_for_outcomes(base + 60, timeout_s=60)
    first = writers[0]
    assert len(first) == 60 + 7
    for h in writers[1:]:
        assert list(h.records) == list(first.records) and [h.text(i) for i in range(len(h))] == [first.text(i) for i in range(len(first))]
        np.testing.assert_array_equal(h.embeddings, first.embeddings)
    for h in writers:
        h.close()


def test_models_and_cards_added_through_a_router_reach_other_replicas(shared_url):
    a, b = History.connect(shared_url, "toy"), History.connect(shared_url, "toy", fresh_reads=True)
    router = Router(CARDS, a, embedder=toy_embedder())
    card = ModelCard(name="newbie", input_price=0.5, output_price=1.0)
    router.add_model(card, {"math question number 1": 1.0, "brand new code question": 0.0})
    b.sync()
    assert b.cards["newbie"] == card and b.n_outcomes("newbie") == 2 and "brand new code question" in b
    Router([*CARDS, card], b, embedder=toy_embedder()).route("math question number 9")  # b can route with it
    a.close()
    b.close()


def test_bad_writes_change_nothing_anywhere(shared_url):
    h = History.connect(shared_url, "toy", follow=False)
    n_q, n_o = len(h), h.n_records
    with pytest.raises(ScopeError, match="no question with id"):
        h.add_outcomes(10_000, [Outcome(model="cheap", correct=1.0)])
    with pytest.raises(ScopeError, match="embeddings have shape"):
        h.add_questions(["math a", "math b"], np.zeros((1, 8)))
    with pytest.raises(ScopeError, match="correct"):
        h.add_outcome_arrays([0], "cheap", [2.0])
    assert (len(h), h.n_records) == (n_q, n_o)
    fresh = History.connect(shared_url, "toy", follow=False)
    assert (len(fresh), fresh.n_records) == (n_q, n_o)
    with pytest.raises(ScopeError, match="takes no feedback log"):
        Router(CARDS, h, embedder=toy_embedder(), feedback_log="/tmp/never.log")


def test_clear_errors_for_missing_histories_mismatches_and_schema_versions(shared_url, postgres_server):
    with pytest.raises(SharedStoreError, match="no history named 'nope'.*dim="):
        History.connect(shared_url, "nope")
    with pytest.raises(SharedStoreError, match="has dim 8, not 384"):
        History.connect(shared_url, "toy", dim=384)
    with pytest.raises(SharedStoreError, match="has embedder 'toy', not 'minilm'"):
        History.connect(shared_url, "toy", embedder_name="minilm")
    with pytest.raises(SharedStoreError, match="cannot connect"):
        History.connect("postgresql://scope@127.0.0.1:1/x")
    created = History.connect(shared_url, "empty", dim=4, embedder_name="e", follow=False)
    assert len(created) == 0 and isinstance(created, PostgresHistory)
    with psycopg.connect(shared_url, autocommit=True) as conn:
        conn.execute("UPDATE scope_schema SET version = 7 WHERE component = 'history'")
    with pytest.raises(SharedStoreError, match="history tables have schema version 7"):
        History.connect(shared_url, "toy")


def test_a_replica_keeps_following_after_the_server_drops_its_connections(shared_url):
    a, b = History.connect(shared_url, "toy", poll_s=0.2), History.connect(shared_url, "toy", poll_s=0.2)
    with psycopg.connect(shared_url, autocommit=True) as conn:  # an outage: every scope session is cut
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = 'scope-router' AND pid <> pg_backend_pid()")
    text = "trivia question after the outage"
    with pytest.raises(SharedStoreError):  # the first call on a cut connection fails cleanly...
        a.add(text, toy_embedder().embed_one(text), [Outcome(model="cheap", correct=1.0)])
    n = a.add(text, toy_embedder().embed_one(text), [Outcome(model="cheap", correct=1.0)])  # ...then reconnects
    assert b.wait_for_outcomes(a.n_records, timeout_s=60) and b.text(n) == text
    a.close()
    b.close()


def test_a_calls_later_feedback_replaces_its_score_on_every_replica(shared_url):
    a, b = History.connect(shared_url, "toy"), History.connect(shared_url, "toy", fresh_reads=True)
    text, emb = "math question rated twice", toy_embedder().embed_one("math question rated twice")
    a.add(text, emb, [Outcome(model="strong", correct=0.0, source="feedback")], call_id="call-1")
    n = a.n_records
    b.add(text, emb, [Outcome(model="strong", correct=1.0, source="feedback")], call_id="call-1")  # re-rated elsewhere
    a.sync()
    late = History.connect(shared_url, "toy", follow=False)  # a replica that starts afterwards
    for h in (a, b, late):
        assert h.n_records == n  # replaced, not counted twice
        assert h.records[-1].outcome.correct == 1.0 and h.text(h.records[-1].question_id) == text
        np.testing.assert_array_equal(h.model_arrays("strong").scores, a.model_arrays("strong").scores)
    a.add(text, emb, [Outcome(model="strong", correct=0.5, source="feedback")], call_id="call-1")  # and back on a
    b.sync()
    assert b.records[-1].outcome.correct == 0.5 and b.n_records == n
    a.close()
    b.close()
