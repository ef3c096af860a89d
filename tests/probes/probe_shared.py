"""The probe's shared-store and money cases (issue 22): PostgreSQL rows written by other clients,
connection URLs of every form, settles the database refuses, the onboarding spend cap.

Cases use only the public API (``History.connect``, ``Ledger.connect``, ``onboard``) and a real,
throw-away PostgreSQL server (`fixtures_postgres.TempPostgres`, started once per process), so the
same table runs on any checkout. Verdicts: a bad row that stops a follower, a write or a new
connection is a failure; a charged cost that is not counted is data loss; a call that does not
return in time is a hang; an exception that is not the library's is a raw error.
"""

from __future__ import annotations

import atexit
import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from conftest import DIM, toy_embedder, toy_history
from probe_common import Case, Verdict, fail, guarded, lost, ok, raised, raw

from scope_shared import History, Ledger, Outcome, ScopeError
from scope_shared.errors import SharedStoreError

_SERVER: Any = None


def server() -> Any:
    """One PostgreSQL server for this process (stopped at exit); raises where none can run."""
    global _SERVER
    if _SERVER is None:
        from fixtures_postgres import TempPostgres, why_unavailable

        reason = why_unavailable()
        if reason:
            raise RuntimeError(reason)
        _SERVER = TempPostgres().start()
        atexit.register(_SERVER.stop)
    return _SERVER


def _psycopg() -> Any:
    import psycopg

    return psycopg


def _toy_db(tmp: Path, per_topic: int = 3) -> str:
    from scope_shared.history.postgres_transfer import import_directory

    url = server().new_database()
    toy_history(per_topic=per_topic).save(tmp / "toy")
    import_directory(tmp / "toy", url, "toy", follow=False).close()
    return url


# ---------------------------------------------------------------- rows of the shared history
def _insert_bad_row(url: str, kind: str) -> str:
    """Write one bad row as another client would (first as the schema stands; if it refuses, as on
    a database without the constraints, e.g. written by an older client). Returns what happened."""
    psycopg = _psycopg()
    with psycopg.connect(url, autocommit=True) as conn:
        n_q, n_o = conn.execute("SELECT n_questions, n_outcomes FROM scope_histories WHERE name = 'toy'").fetchone()
        q = "INSERT INTO scope_questions (history, qid, text, benchmark, embedding) VALUES ('toy', %s, %s, NULL, %s)"
        o = ("INSERT INTO scope_outcomes (history, seq, qid, model, correct, output_tokens, source) "
             "VALUES ('toy', %s, 0, %s, %s, %s, 'x')")
        stmt, counters = {
            "NaN embedding": ((q, (n_q, "nan vector", np.full(DIM, np.nan, "<f4").tobytes())), (n_q + 1, n_o)),
            "wrong-size embedding": ((q, (n_q, "short vector", np.ones(DIM - 3, "<f4").tobytes())), (n_q + 1, n_o)),
            "correct NaN": ((o, (n_o, "cheap", float("nan"), None)), (n_q, n_o + 1)),
            "correct 7": ((o, (n_o, "cheap", 7.0, None)), (n_q, n_o + 1)),
            "negative output tokens": ((o, (n_o, "cheap", 1.0, -50.0)), (n_q, n_o + 1)),
            "blank model name": ((o, (n_o, "   ", 1.0, None)), (n_q, n_o + 1)),
            "card that is not a card": (("INSERT INTO scope_cards (history, name, card) VALUES ('toy', 'evil', %s)",
                                         ('{"name": "evil", "input_price": -1}',)), None),
        }[kind]
        how = "accepted by the schema"
        try:
            conn.execute(*stmt)
        except psycopg.errors.IntegrityError:
            how = "refused by the schema; written with its checks dropped"
            conn.execute("ALTER TABLE scope_outcomes DROP CONSTRAINT IF EXISTS scope_outcomes_valid")
            conn.execute("DROP TRIGGER IF EXISTS scope_check_question ON scope_questions")
            conn.execute(*stmt)
        if counters is None:
            conn.execute("UPDATE scope_histories SET cards_version = cards_version + 1 WHERE name = 'toy'")
        else:
            conn.execute("UPDATE scope_histories SET n_questions = %s, n_outcomes = %s WHERE name = 'toy'", counters)
        conn.execute("SELECT pg_notify('scope_history', 'toy')")
    return how


def _bad_row_case(kind: str) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        url = _toy_db(tmp)
        emb = toy_embedder()
        follower = History.connect(url, "toy", poll_s=0.2)
        try:
            how = _insert_bad_row(url, kind)
            time.sleep(0.5)
            fresh_error = None
            try:
                fresh = History.connect(url, "toy", follow=False)
            except Exception as exc:  # noqa: BLE001
                fresh_error = exc
            if fresh_error is not None:
                kind_ = raw if not isinstance(fresh_error, ScopeError) else fail
                return kind_(f"({how}) a new History.connect fails: {raised(fresh_error)}")
            text = "math written after the bad row"
            try:
                fresh.add(text, emb.embed_one(text), [Outcome(model="cheap", correct=1.0)])
            except Exception as exc:  # noqa: BLE001
                kind_ = raw if not isinstance(exc, ScopeError) else fail
                return kind_(f"({how}) writes fail after the bad row: {raised(exc)}")
            deadline = time.monotonic() + 10
            while text not in follower and time.monotonic() < deadline:
                time.sleep(0.1)
            if text not in follower:
                return fail(f"({how}) the follower froze: a write after the bad row never reached it")
            again = History.connect(url, "toy", follow=False)
            if text not in again:
                return lost(f"({how}) an acknowledged write is not in the database")
            return ok(how)
        finally:
            follower.close()
    return run


def _long_question(tmp: Path) -> Verdict:
    url = _toy_db(tmp)
    emb = toy_embedder()
    h = History.connect(url, "toy", follow=False)
    text = "math " + " ".join(f"w{i:05d}" for i in range(1500))  # ~10 KB
    try:
        h.add(text, emb.embed_one("math long"), [Outcome(model="cheap", correct=1.0)])
    except ScopeError as exc:
        return fail(f"a 10 KB question cannot be stored: {raised(exc)}")
    return ok() if text in History.connect(url, "toy", follow=False) else lost("the long question is not in the database")


def _tables(url: str) -> tuple:
    with _psycopg().connect(url, autocommit=True) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("scope_histories", "scope_questions", "scope_outcomes", "scope_cards"))


def _import_pack(tmp: Path) -> Verdict:
    """``scope history import`` of the bundled pack (questions up to ~10 KB)."""
    from scope_shared.history.postgres_transfer import import_directory
    from scope_shared.onboarding.pack import load_pack

    pack = load_pack()
    pack.history().save(tmp / "pack")
    url = server().new_database()
    try:
        shared = import_directory(tmp / "pack", url, "pack", follow=False)
    except ScopeError as exc:
        left = _tables(url)
        partial = "; left " + f"{left[3]} cards, {left[1]} questions behind" if any(left[1:]) else ""
        blamed = " (blames the connection)" if "connection" in str(exc) else ""
        return fail(f"import failed{blamed}{partial}: {str(exc)[:120]}")
    n = len(shared)
    shared.close()
    return ok() if n == len(pack) else fail(f"imported {n} of {len(pack)} questions")


def _import_refused(tmp: Path) -> Verdict:
    """An import the database refuses part-way must change nothing and name the reason."""
    from scope_shared.history.postgres_transfer import import_directory

    toy_history(per_topic=3).save(tmp / "toy")
    url = server().new_database()
    History.connect(url, "other", dim=DIM, follow=False).close()
    with _psycopg().connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE scope_outcomes ADD CONSTRAINT no_strong CHECK (model <> 'strong')")
    before = _tables(url)
    try:
        import_directory(tmp / "toy", url, "toy", follow=False)
    except ScopeError as exc:
        after = _tables(url)
        if after != before:
            return fail(f"not atomic: tables went from {before} to {after}")
        return ok() if "no_strong" in str(exc) else fail(f"the error does not name the cause: {str(exc)[:120]}")
    except Exception as exc:  # noqa: BLE001
        return raw(raised(exc))
    return fail("the import ignored the database's refusal")


def postgres_cases() -> list[Case]:
    server()
    kinds = ("NaN embedding", "wrong-size embedding", "correct NaN", "correct 7", "negative output tokens",
             "blank model name", "card that is not a card")
    rows = [(f"row with {k}", _bad_row_case(k)) for k in kinds]
    rows += [("10 KB question", _long_question), ("import of the bundled pack", _import_pack),
             ("import refused part-way", _import_refused)]
    return [Case("postgres", name, run) for name, run in rows]


# ---------------------------------------------------------------- URLs and passwords
PW = "S3cr3t-Pw"
URLS = {
    "bad percent-escape": f"postgresql://scope:{PW}%zz@127.0.0.1:1/db",
    "unencoded space": f"postgresql://scope:{PW} x@127.0.0.1:1/db",
    "IPv6 bracket error": f"postgresql://scope:{PW}@[::1:1/db",
    "postgresql+psycopg://": f"postgresql+psycopg://scope:{PW}@127.0.0.1:1/db",
    "keyword conninfo": f"host=127.0.0.1 port=1 password={PW} dbname=x",
    "quoted keyword conninfo": f"host=127.0.0.1 password='{PW} x' dbname=x",
    "password query parameter": f"postgresql://scope@127.0.0.1:1/db?password={PW}",
    "server down": f"postgresql://scope:{PW}@127.0.0.1:1/db",
    "port out of range": f"postgresql://scope:{PW}@127.0.0.1:99999/db",
    "@ in the password": f"postgresql://scope:{PW}@x@127.0.0.1:1/db",
}


def _url_case(url: str, which: str) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        box: dict[str, BaseException] = {}

        def connect() -> Any:
            try:
                return Ledger.connect(url, budget=1.0) if which == "ledger" else History.connect(url, dim=8)
            except BaseException as exc:
                box["exc"] = exc
                raise

        v = guarded(connect, SharedStoreError, deadline_s=30, accept=lambda _: fail("connected?"))
        exc = box.get("exc")
        if exc is not None:
            shown = "".join(traceback.format_exception(exc)) + repr(exc)
            if PW in shown or "S3cr3t" in shown:
                return fail(f"the password is shown: {str(exc)[:140]}")
        return v
    return run


def url_cases() -> list[Case]:
    return [Case("urls", f"{which}: {form}", _url_case(url, which)) for form, url in URLS.items() for which in ("ledger", "history")]


# ---------------------------------------------------------------- the shared ledger's settles
def _settle_case(model: Any = "m", info: Any = None, refuse: bool = False) -> Callable[[Path], Verdict]:
    """A call settles at 0.4 with this model name / info; another hold stays open across leases.
    The 0.4 must be counted (here or in the database) by the time the ledger is closed, the settle
    must not block, and the other hold must keep being renewed."""
    def run(tmp: Path) -> Verdict:
        url = server().new_database()
        ledger = Ledger.connect(url, "b", budget=10.0, lease_s=3.0)
        if refuse:
            with _psycopg().connect(url, autocommit=True) as conn:
                conn.execute("ALTER TABLE scope_ledger_entries ADD CONSTRAINT refuse CHECK (cost < 0.3)")
        other = ledger.reserve(0.1)
        hold = ledger.reserve(0.5)
        v = guarded(lambda: hold.settle(0.4, model=model, info=info or {}), ScopeError, deadline_s=20,
                    accept=lambda _: ok())
        if v.status in ("hang", "raw-error"):
            return v
        time.sleep(4.5)  # beyond the lease
        try:
            reserved = ledger.reserved
        except Exception as exc:  # noqa: BLE001
            return raw(f"reading the budget failed: {raised(exc)}")
        spent_here = ledger.spent
        other.cancel()
        ledger.close()
        again = Ledger.connect(url, "b")
        spent_db = again.spent
        again.close()
        if spent_here < 0.4 - 1e-9 and spent_db < 0.4 - 1e-9:
            return lost(f"a call that cost 0.4 is not counted (spent here {spent_here}, in the database {spent_db})")
        if reserved < 0.1 - 1e-9:
            return fail(f"the other open hold lapsed (reserved {reserved}): its renewal stopped")
        return ok(f"spent here {spent_here}, in the database {spent_db}")
    return run


def ledger_cases() -> list[Case]:
    server()
    rows = [
        ("settle with a NUL byte in the model name", _settle_case(model="evil\x00model")),
        ("settle with a NUL byte in info", _settle_case(info={"note": "a\x00b"})),
        ("settle with a lone surrogate in the model name", _settle_case(model="evil\ud800")),
        ("settle with NaN in info", _settle_case(info={"x": float("nan")})),
        ("settle the database refuses for good (a constraint)", _settle_case(refuse=True)),
    ]
    return [Case("ledger", name, run) for name, run in rows]


# ---------------------------------------------------------------- the onboarding spend cap
def _spend_cap(tmp: Path) -> Verdict:
    from scope_shared import onboard
    from scope_shared.onboarding.scripted import ScriptedAnswerer

    card = {"name": "wordy", "input_price": 1.0, "output_price": 10.0, "default_output_tokens": 256}
    model = ScriptedAnswerer("wordy", 0.5, verbosity=40 * 256, delay_s=0.02)  # answers ~20x longer than assumed
    res = onboard(model, card, n_anchors=50, max_spend=0.01, concurrency=16, show_progress=False)
    spent = res.report.spent_this_run
    per_call = max((r.cost for r in res.results if not r.reused), default=0.0)
    detail = f"spent {spent:.4f} = {spent / 0.01:.1f}x the cap of 0.01 (one call costs {per_call:.4f})"
    return ok(detail) if spent <= 0.01 + per_call else fail(detail)


def _bad_usage(usage: dict[str, Any]) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        from scope_shared import onboard
        from scope_shared.onboarding.scripted import ScriptedAnswerer

        honest = ScriptedAnswerer("liar", 0.5)
        calls: list[str] = []

        def model(prompt: str) -> Any:
            out = honest(prompt)
            calls.append(prompt)
            return {**out, **usage} if len(calls) == 3 else out

        def run_it() -> Any:
            return onboard(model, {"name": "liar", "input_price": 1.0, "output_price": 2.0}, n_anchors=10,
                           concurrency=1, show_progress=False)

        def judge(res: Any) -> Verdict:
            rep = res.report
            if len(rep.failed) != 1 or rep.calls_made != 9:
                return fail(f"{rep.calls_made} calls made, failed: {rep.failed}")
            return ok(rep.failed[0][:100])

        return _expect_run(run_it, judge)
    return run


def _expect_run(fn: Callable[[], Any], judge: Callable[[Any], Verdict]) -> Verdict:
    try:
        res = fn()
    except ScopeError as exc:
        return fail(f"the run failed: {raised(exc)}")
    except Exception as exc:  # noqa: BLE001
        return raw(f"the run failed: {raised(exc)}")
    return judge(res)


def onboarding_cases() -> list[Case]:
    rows = [
        ("spend cap: concurrency 16, answers 20x longer than assumed", _spend_cap),
        ("usage record with negative input tokens", _bad_usage({"input_tokens": -5, "output_tokens": 10})),
        ("usage record with 1e15 output tokens", _bad_usage({"input_tokens": 10, "output_tokens": 1e15})),
        ("usage record with negative output tokens", _bad_usage({"input_tokens": 10, "output_tokens": -1})),
    ]
    return [Case("onboarding", name, run) for name, run in rows]


def cases() -> list[Case]:
    return [*postgres_cases(), *url_cases(), *ledger_cases(), *onboarding_cases()]


if __name__ == "__main__":  # quick look: python tests/probes/probe_shared.py
    from probe_common import run_case

    for c in cases():
        v = run_case(c)
        print(json.dumps({"id": c.id, "status": v.status, "detail": v.detail[:160]}))
