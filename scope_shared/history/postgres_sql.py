"""Tables of the shared history (schema component ``history``) and the statements that move rows.

One row of ``scope_histories`` per named history: its embedding dimension, embedder, index kind,
and three counters (questions, outcomes, card changes). A writer locks that row for its whole
transaction, so writes to one history are serialised and numbered densely: question ids and
outcome sequence numbers in the database are the ids every replica's in-memory `History` uses, and
a replica that has applied everything below the counters it read has a consistent snapshot (no
row below a committed counter can appear later). Feedback is outcomes with their ``source`` (e.g.
``"feedback"``), the time they were recorded and the routed call they are on; a call's later
feedback replaces its earlier score (``scope_replacements`` numbers those changes the same way).
"""

from __future__ import annotations

VERSION = 1
CHANNEL = "scope_history"

DDL = """
CREATE TABLE scope_histories (
    name           text PRIMARY KEY,
    dim            integer NOT NULL CHECK (dim > 0),
    embedder       text,
    index_spec     jsonb,
    n_questions    integer NOT NULL DEFAULT 0,
    n_outcomes     bigint NOT NULL DEFAULT 0,
    n_replaced     bigint NOT NULL DEFAULT 0,
    cards_version  bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scope_questions (
    history     text NOT NULL REFERENCES scope_histories (name) ON DELETE CASCADE,
    qid         integer NOT NULL,
    text        text NOT NULL,
    benchmark   text,
    embedding   bytea NOT NULL,   -- float32 little-endian, unit length
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (history, qid),
    UNIQUE (history, text)
);

CREATE TABLE scope_outcomes (
    history        text NOT NULL,
    seq            bigint NOT NULL,
    qid            integer NOT NULL,
    model          text NOT NULL,
    correct        double precision NOT NULL,
    output_tokens  double precision,
    input_tokens   double precision,
    latency_s      double precision,
    source         text NOT NULL,
    call_id        text,          -- the routed call this outcome is feedback on
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (history, seq),
    FOREIGN KEY (history, qid) REFERENCES scope_questions (history, qid) ON DELETE CASCADE
);
CREATE UNIQUE INDEX scope_outcomes_call ON scope_outcomes (history, call_id) WHERE call_id IS NOT NULL;

-- a call's later feedback replaces its earlier score: the row is updated, and the change numbered
-- here so that replicas which already hold the row apply it too
CREATE TABLE scope_replacements (
    history      text NOT NULL REFERENCES scope_histories (name) ON DELETE CASCADE,
    seq          bigint NOT NULL,
    outcome_seq  bigint NOT NULL,
    correct      double precision NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (history, seq)
);

CREATE TABLE scope_cards (
    history  text NOT NULL REFERENCES scope_histories (name) ON DELETE CASCADE,
    name     text NOT NULL,
    card     jsonb NOT NULL,
    PRIMARY KEY (history, name)
);
"""

COUNTERS = "SELECT n_questions, n_outcomes, n_replaced, cards_version FROM scope_histories WHERE name = %s"
LOCK_COUNTERS = COUNTERS + " FOR UPDATE"
QUESTIONS_FROM = (
    "SELECT text, benchmark, embedding FROM scope_questions "
    "WHERE history = %s AND qid >= %s AND qid < %s ORDER BY qid"
)
OUTCOMES_FROM = (
    "SELECT qid, model, correct, output_tokens, input_tokens, latency_s, source FROM scope_outcomes "
    "WHERE history = %s AND seq >= %s AND seq < %s ORDER BY seq"
)
REPLACEMENTS_FROM = (
    "SELECT outcome_seq, correct FROM scope_replacements WHERE history = %s AND seq >= %s AND seq < %s ORDER BY seq"
)
CALL_ROW = "SELECT seq FROM scope_outcomes WHERE history = %s AND call_id = %s"
FREE_CALL = "UPDATE scope_outcomes SET call_id = NULL WHERE history = %s AND call_id = %s"
SET_CALL = "UPDATE scope_outcomes SET call_id = %s WHERE history = %s AND seq = %s"
REPLACE = "UPDATE scope_outcomes SET correct = %s WHERE history = %s AND seq = %s"
ADD_REPLACEMENT = "INSERT INTO scope_replacements (history, seq, outcome_seq, correct) VALUES (%s, %s, %s, %s)"
CARDS = "SELECT card FROM scope_cards WHERE history = %s ORDER BY name"
COPY_QUESTIONS = "COPY scope_questions (history, qid, text, benchmark, embedding) FROM STDIN"
COPY_OUTCOMES = (
    "COPY scope_outcomes (history, seq, qid, model, correct, output_tokens, input_tokens, latency_s, source) "
    "FROM STDIN"
)
SET_COUNTERS = "UPDATE scope_histories SET n_questions = %s, n_outcomes = %s, n_replaced = %s WHERE name = %s"
UPSERT_CARD = (
    "INSERT INTO scope_cards (history, name, card) VALUES (%s, %s, %s) "
    "ON CONFLICT (history, name) DO UPDATE SET card = EXCLUDED.card"
)
DELETE_CARD = "DELETE FROM scope_cards WHERE history = %s AND name = %s"
BUMP_CARDS = "UPDATE scope_histories SET cards_version = cards_version + 1 WHERE name = %s"
NOTIFY = "SELECT pg_notify(%s, %s)"
