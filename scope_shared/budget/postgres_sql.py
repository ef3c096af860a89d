"""Tables and server-side functions of the shared ledger (schema component ``ledger``).

Money is ``numeric`` (exact decimal): thousands of processes adding costs in any order give the
same total, to the last digit, as adding them in one. One row per named budget holds its cap,
mode, period and what was spent in the current period; every reservation is a row of
``scope_holds`` with a lease (``expires_at``); every settled call is a row of
``scope_ledger_entries``.

Each operation is one call of a plpgsql function, so one round trip: ``scope_reserve`` locks the
budget's row (``FOR UPDATE``: reservers of one budget queue there, so no update is lost and no two
see the same dollars free), rolls the period if it has ended, drops lapsed holds, and inserts the
hold only if it fits; ``scope_settle`` releases the hold and charges the real cost under the same
lock. Reads (``scope_budget_status``) take no lock and ignore lapsed holds.
"""

from __future__ import annotations

VERSION = 1

DDL = """
CREATE TABLE scope_budgets (
    name          text PRIMARY KEY,
    budget            numeric CHECK (budget >= 0),            -- NULL: unlimited (accounting only)
    mode              text NOT NULL CHECK (mode IN ('raise', 'end', 'soft')),
    period_s          double precision CHECK (period_s > 0),  -- NULL: never resets
    period_start      timestamptz NOT NULL DEFAULT 'epoch',
    spent             numeric NOT NULL DEFAULT 0,             -- this and the next two: current period
    calls             bigint NOT NULL DEFAULT 0,
    overshoot_calls   bigint NOT NULL DEFAULT 0,              -- settled above what they held
    overshoot_excess  numeric NOT NULL DEFAULT 0,
    max_ratio         double precision NOT NULL DEFAULT 1,    -- largest cost / hold ever (kept across periods)
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scope_holds (
    id          bigserial PRIMARY KEY,
    budget      text NOT NULL REFERENCES scope_budgets (name) ON DELETE CASCADE,
    amount      numeric NOT NULL CHECK (amount >= 0),
    owner       text NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX scope_holds_budget ON scope_holds (budget, expires_at);

CREATE TABLE scope_ledger_entries (
    id             bigserial PRIMARY KEY,
    budget         text NOT NULL REFERENCES scope_budgets (name) ON DELETE CASCADE,
    period_start   timestamptz NOT NULL,
    cost           numeric NOT NULL,
    model          text,
    input_tokens   double precision,
    output_tokens  double precision,
    expected_cost  double precision,
    info           jsonb NOT NULL DEFAULT '{}',
    time           double precision NOT NULL,
    hold_id        bigint UNIQUE   -- the hold it settled (NULL for a charge): a settle retried after a
                                   -- lost reply finds its entry and charges nothing twice
);
CREATE INDEX scope_ledger_entries_budget ON scope_ledger_entries (budget, period_start);

-- the start of the period that contains `at` (periods are aligned to the Unix epoch, UTC)
CREATE FUNCTION scope_period_start(p_period_s double precision, at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_period_s IS NULL THEN 'epoch'::timestamptz
                ELSE to_timestamp(floor(extract(epoch FROM at) / p_period_s) * p_period_s) END
$$;

-- lock a budget's row, start a new period if the last one ended, drop lapsed holds
CREATE FUNCTION scope_lock_budget(p_name text) RETURNS scope_budgets
LANGUAGE plpgsql AS $$
DECLARE
    b scope_budgets;
    start_ts timestamptz;
BEGIN
    SELECT * INTO b FROM scope_budgets WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no budget named %', p_name USING ERRCODE = 'no_data_found';
    END IF;
    start_ts := scope_period_start(b.period_s, clock_timestamp());
    IF start_ts > b.period_start THEN
        UPDATE scope_budgets SET period_start = start_ts, spent = 0, calls = 0, overshoot_calls = 0,
            overshoot_excess = 0
        WHERE name = p_name RETURNING * INTO b;
    END IF;
    DELETE FROM scope_holds WHERE budget = p_name AND expires_at < clock_timestamp();
    RETURN b;
END $$;

CREATE FUNCTION scope_reserve(
    p_name text, p_amount numeric, p_force boolean, p_owner text, p_lease_s double precision,
    OUT hold_id bigint, OUT remaining numeric, OUT budget numeric
) LANGUAGE plpgsql AS $$
DECLARE
    b scope_budgets;
    held numeric;
BEGIN
    b := scope_lock_budget(p_name);
    SELECT coalesce(sum(amount), 0) INTO held FROM scope_holds WHERE scope_holds.budget = p_name;
    budget := b.budget;
    remaining := b.budget - b.spent - held;  -- NULL when unlimited
    IF p_force OR b.budget IS NULL OR p_amount <= remaining THEN
        INSERT INTO scope_holds (budget, amount, owner, expires_at)
        VALUES (p_name, p_amount, p_owner, clock_timestamp() + p_lease_s * interval '1 second')
        RETURNING id INTO hold_id;
        remaining := remaining - p_amount;
    END IF;
END $$;

-- settle hold `p_hold` (which held `p_held`) at `p_cost`, or with both NULL charge without a hold.
-- Returns false, changing nothing, when that hold was already settled (a retry).
CREATE FUNCTION scope_settle(
    p_name text, p_hold bigint, p_held numeric, p_cost numeric, p_model text, p_input_tokens double precision,
    p_output_tokens double precision, p_expected_cost double precision, p_info jsonb, p_time double precision,
    OUT charged boolean
) LANGUAGE plpgsql AS $$
DECLARE
    b scope_budgets;
    over boolean := p_held IS NOT NULL AND p_cost > p_held;
BEGIN
    b := scope_lock_budget(p_name);
    IF p_hold IS NOT NULL AND EXISTS (SELECT 1 FROM scope_ledger_entries WHERE hold_id = p_hold) THEN
        charged := false;
        RETURN;
    END IF;
    DELETE FROM scope_holds WHERE id = p_hold;  -- gone already if its lease lapsed: charged all the same
    UPDATE scope_budgets SET
        spent = spent + p_cost,
        calls = calls + 1,
        overshoot_calls = overshoot_calls + over::int,
        overshoot_excess = overshoot_excess + CASE WHEN over THEN p_cost - p_held ELSE 0 END,
        max_ratio = CASE WHEN over AND p_held > 0 THEN greatest(max_ratio, (p_cost / p_held)::float8)
                         ELSE max_ratio END
    WHERE name = p_name;
    INSERT INTO scope_ledger_entries
        (budget, period_start, cost, model, input_tokens, output_tokens, expected_cost, info, time, hold_id)
    VALUES (p_name, b.period_start, p_cost, p_model, p_input_tokens, p_output_tokens, p_expected_cost,
            p_info, p_time, p_hold);
    charged := true;
END $$;

-- spent, held and calls as of now, without locking (a period that has ended reads as empty)
CREATE FUNCTION scope_budget_status(
    p_name text, OUT budget numeric, OUT spent numeric, OUT reserved numeric, OUT calls bigint,
    OUT overshoot_calls bigint, OUT overshoot_excess numeric, OUT max_ratio double precision,
    OUT period_start timestamptz
) LANGUAGE plpgsql STABLE AS $$
DECLARE
    b scope_budgets;
BEGIN
    SELECT * INTO b FROM scope_budgets WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no budget named %', p_name USING ERRCODE = 'no_data_found';
    END IF;
    budget := b.budget;
    period_start := scope_period_start(b.period_s, clock_timestamp());
    max_ratio := b.max_ratio;
    IF period_start > b.period_start THEN
        spent := 0; calls := 0; overshoot_calls := 0; overshoot_excess := 0;
    ELSE
        spent := b.spent; calls := b.calls; period_start := b.period_start;
        overshoot_calls := b.overshoot_calls; overshoot_excess := b.overshoot_excess;
    END IF;
    SELECT coalesce(sum(amount), 0) INTO reserved FROM scope_holds h
    WHERE h.budget = p_name AND h.expires_at >= clock_timestamp();
END $$;
"""
