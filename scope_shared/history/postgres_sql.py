"""Tables of the shared history (schema component ``history``) and the statements that move rows.

One row of ``scope_histories`` per named history: its embedding dimension, embedder, index kind,
and three counters (questions, outcomes, card changes). A writer locks that row for its whole
transaction, so writes to one history are serialised and numbered densely: question ids and
outcome sequence numbers in the database are the ids every replica's in-memory `History` uses, and
a replica that has applied everything below the counters it read has a consistent snapshot (no
row below a committed counter can appear later). Feedback is outcomes with their ``source`` (e.g.
``"feedback"``), the time they were recorded and the routed call they are on; a call's later
feedback replaces its earlier score (``scope_replacements`` numbers those changes the same way).

The database is shared with every client, so the schema refuses rows no `History` would hold,
whoever writes them (schema version 2): CHECK constraints on every outcome and replacement (scores
in [0, 1], counts finite and >= 0, names non-empty) and a trigger on questions (an embedding of
exactly ``dim`` finite float32 values, a non-blank text). Question texts are unique per history
through an index on their SHA-256, not on the text itself (a btree entry of the raw text fails
above ~2.7 KB). `MIGRATIONS` brings a version-1 database to version 2 in place; constraints added
there are ``NOT VALID`` (old rows are not rechecked: replicas validate every row they read anyway).
"""

from __future__ import annotations

CHANNEL = "scope_history"

VERSION = 2

# a little-endian float32 is NaN or infinite when its exponent bits are all ones: in hex, the third
# byte is 8x..fx and the fourth 7f or ff; the regex accepts a hex string of finite values only
_FINITE_F32_HEX = "^(?:[0-9a-f]{4}(?:[0-7][0-9a-f]{3}|[89a-f][0-9a-f](?:[0-689a-e][0-9a-f]|[7f][0-9a-e])))*$"

_CHECKS = """
CREATE FUNCTION scope_check_question() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d integer;
BEGIN
    SELECT dim INTO d FROM scope_histories WHERE name = NEW.history;
    IF octet_length(NEW.embedding) <> 4 * d THEN
        RAISE EXCEPTION 'question % of history %: embedding of % bytes, expected % float32 values',
            NEW.qid, NEW.history, octet_length(NEW.embedding), d USING ERRCODE = 'check_violation';
    END IF;
    IF encode(NEW.embedding, 'hex') !~ '%(finite)s' THEN
        RAISE EXCEPTION 'question % of history %: embedding holds NaN or infinite values', NEW.qid, NEW.history
            USING ERRCODE = 'check_violation';
    END IF;
    IF btrim(NEW.text) = '' THEN
        RAISE EXCEPTION 'question % of history %: empty text', NEW.qid, NEW.history USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER scope_check_question BEFORE INSERT OR UPDATE ON scope_questions
    FOR EACH ROW EXECUTE FUNCTION scope_check_question();
-- the database's encoding is fixed when it is created, so the digest of a text never changes
CREATE FUNCTION scope_text_sha256(t text) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT sha256(convert_to(t, 'UTF8')) $$;
CREATE UNIQUE INDEX scope_questions_text_sha256 ON scope_questions (history, scope_text_sha256(text));
ALTER TABLE scope_outcomes
    ADD CONSTRAINT scope_outcomes_valid CHECK (
        qid >= 0 AND correct >= 0 AND correct <= 1
        AND (output_tokens IS NULL OR (output_tokens >= 0 AND output_tokens < 'Infinity'))
        AND (input_tokens IS NULL OR (input_tokens >= 0 AND input_tokens < 'Infinity'))
        AND (latency_s IS NULL OR (latency_s >= 0 AND latency_s < 'Infinity'))
        AND btrim(model) <> '' AND btrim(source) <> ''
    ) %(valid)s;
ALTER TABLE scope_replacements
    ADD CONSTRAINT scope_replacements_valid CHECK (correct >= 0 AND correct <= 1) %(valid)s;
"""

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
    text        text NOT NULL,    -- unique per history through scope_questions_text_sha256
    benchmark   text,
    embedding   bytea NOT NULL,   -- float32 little-endian, unit length
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (history, qid)
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
""" + _CHECKS.replace("%(finite)s", _FINITE_F32_HEX).replace("%(valid)s", "")

#: from-version -> the statements that bring a database of that version to the next one
MIGRATIONS = {
    1: "ALTER TABLE scope_questions DROP CONSTRAINT IF EXISTS scope_questions_history_text_key;\n"
       + _CHECKS.replace("%(finite)s", _FINITE_F32_HEX).replace("%(valid)s", "NOT VALID"),
}

COUNTERS = "SELECT n_questions, n_outcomes, n_replaced, cards_version FROM scope_histories WHERE name = %s"
LOCK_COUNTERS = COUNTERS + " FOR UPDATE"
QUESTIONS_FROM = (
    "SELECT qid, text, benchmark, embedding FROM scope_questions "
    "WHERE history = %s AND qid >= %s AND qid < %s ORDER BY qid"
)
OUTCOMES_FROM = (
    "SELECT seq, qid, model, correct, output_tokens, input_tokens, latency_s, source FROM scope_outcomes "
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
