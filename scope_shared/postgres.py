"""PostgreSQL connections for the shared (fleet) ledger and history: opt-in, by URL.

Nothing here runs unless a user passes a connection URL (``Ledger.connect(url)``,
``History.connect(url)``); psycopg is imported only then, so ``import scope_shared`` never needs it
(``pip install 'scope-router[postgres]'``).

Every connection is made with timeouts, so no call hangs on a dead or locked server: a connect
timeout, a statement timeout, a lock timeout and an idle-in-transaction timeout (all settable per
connection), plus TCP keepalives. Every failure becomes a `SharedStoreError` that says what went
wrong (bad URL, server down, wrong schema version), never a raw driver traceback, and never shows
the password: every message that could hold a URL, a conninfo string or a driver's echo of one
goes through `redact`, whatever the URL's form (bad percent-escapes, unencoded spaces, broken IPv6
brackets, ``postgresql+psycopg://``, keyword strings like ``host=x password=y``).

Schemas are versioned per component (``ledger``, ``history``) in one table, ``scope_schema``; a
component's tables are created on first use (under an advisory lock, so many processes starting at
once create them once), and a database written by another schema version is refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from urllib.parse import unquote
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from scope_shared.errors import SharedStoreError

if TYPE_CHECKING:
    import psycopg

URL_SCHEMES = ("postgresql://", "postgres://")
#: advisory-lock key under which schemas are created (any constant; "SCOPE" in ASCII)
_SCHEMA_LOCK = 0x53434F5045
T = TypeVar("T")


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_KEYWORD_PASSWORD = re.compile(r"(?i)(password\s*=\s*)('(?:\\.|[^'\\])*'?|[^\s&]*)")
REDACTED = "***"
_DRIVER_SUFFIX = re.compile(r"(?i)postgres(ql)?\+")


def _url_passwords(text: str) -> list[str]:
    """Passwords in the ``scheme://user:password@host`` parts of ``text`` (read up to the last ``@``,
    so a password holding ``@``, spaces or bad escapes is caught whole)."""
    found = []
    for m in _SCHEME.finditer(text):
        rest = text[m.end():]
        at = rest.rfind("@")
        if at > 0 and ":" in rest[:at]:
            found.append(rest[:at].split(":", 1)[1])
    return found


def redact(text: object, *sources: object) -> str:
    """``text`` with every password it may hold replaced by ``***``.

    The one redaction function: used for every message that may contain a connection string (the
    URL itself, a driver's error, which may quote any part of it). Passwords are found in ``text``
    and in each of ``sources`` (the URL the message is about): the password of each
    ``scheme://user:password@`` (up to the last ``@``), of each ``password=`` keyword or query
    parameter, and their percent-decoded forms, and each is removed wherever it appears.
    """
    out = str(text)
    secrets: set[str] = set()
    for source in (out, *(str(s) for s in sources if isinstance(s, str))):
        for pw in _url_passwords(source):
            secrets.update((pw, unquote(pw)))
        for m in _KEYWORD_PASSWORD.finditer(source):
            value = m.group(2)
            secrets.update((value, value.strip("'"), unquote(value)))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        out = out.replace(secret, REDACTED)
    out = _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + REDACTED if m.group(2) else m.group(0), out)
    for pw in _url_passwords(out):  # what is left between "user:" and "@"
        if pw and pw != REDACTED:
            out = out.replace(":" + pw + "@", ":" + REDACTED + "@")
    return out


def is_postgres_url(value: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) connection URL."""
    return isinstance(value, str) and value.strip().lower().startswith(URL_SCHEMES)


@dataclass(frozen=True)
class Timeouts:
    """Seconds before a call gives up: connecting, one statement, waiting for a lock, idle in a
    transaction (the server ends a session that a crashed client left mid-transaction)."""

    connect_s: float = 5.0
    statement_s: float = 15.0
    lock_s: float = 10.0
    idle_in_transaction_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("connect_s", "statement_s", "lock_s", "idle_in_transaction_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise SharedStoreError(f"timeout {name} must be a positive number of seconds, got {v!r}")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise SharedStoreError(
            "a PostgreSQL URL needs psycopg 3: pip install 'scope-router[postgres]'"
        ) from None
    return psycopg


def describe(url: str) -> str:
    """``user@host:port/dbname`` of a URL, without its password (for error messages)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        d = conninfo_to_dict(url)
    except Exception:
        return "<unparsable URL>"
    user = f"{d['user']}@" if d.get("user") else ""
    port = f":{d['port']}" if d.get("port") else ""
    return redact(f"{user}{d.get('host') or 'localhost'}{port}/{d.get('dbname') or ''}", url)


def connect(url: str, timeouts: Timeouts | None = None, *, autocommit: bool = True) -> "psycopg.Connection":
    """Open one connection with the timeouts set; `SharedStoreError` on a bad URL or a server that
    does not answer."""
    if not isinstance(url, str) or not url.strip():
        raise SharedStoreError(f"a PostgreSQL connection URL must be a non-empty string, got {type(url).__name__}")
    if not is_postgres_url(url):
        hint = "; drop the +driver part" if _DRIVER_SUFFIX.match(url.strip()) else ""
        raise SharedStoreError(
            f"not a PostgreSQL URL: {redact(url)[:60]!r} (expected postgresql://user:password@host:port/dbname{hint})"
        )
    psycopg = _psycopg()
    from psycopg.conninfo import conninfo_to_dict

    t = timeouts or Timeouts()
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise SharedStoreError(f"malformed PostgreSQL URL ({redact(str(exc).strip(), url)})") from None
    options = " ".join(
        f"-c {k}={int(v * 1000)}"
        for k, v in (
            ("statement_timeout", t.statement_s),
            ("lock_timeout", t.lock_s),
            ("idle_in_transaction_session_timeout", t.idle_in_transaction_s),
        )
    )
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=max(1, round(t.connect_s)),
            options=options,
            application_name="scope-router",
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
    except psycopg.Error as exc:
        raise SharedStoreError(
            f"cannot connect to PostgreSQL at {describe(url)} (is the server running and the URL "
            f"right?): {redact(_first_line(exc), url)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__


def ensure_schema(
    conn: "psycopg.Connection", component: str, version: int, ddl: str, migrations: Mapping[int, str] | None = None,
) -> None:
    """Create ``component``'s tables (``ddl``) if this database has none; bring an older version up
    to ``version`` with ``migrations`` (from-version -> statements, each step in the same
    transaction as the version bump); refuse a version it cannot migrate (e.g. a newer one)."""
    migrations = migrations or {}
    with translate_errors(f"setting up the {component} schema"), conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS scope_schema (component text PRIMARY KEY, version integer NOT NULL)")
        row = conn.execute("SELECT version FROM scope_schema WHERE component = %s", (component,)).fetchone()
        if row is None:
            conn.execute(ddl)
            conn.execute("INSERT INTO scope_schema (component, version) VALUES (%s, %s)", (component, version))
            return
        stored = row[0]
        if stored < version and all(v in migrations for v in range(stored, version)):
            for v in range(stored, version):
                conn.execute(migrations[v])
            conn.execute("UPDATE scope_schema SET version = %s WHERE component = %s", (version, component))
        elif stored != version:
            raise SharedStoreError(
                f"the database's {component} tables have schema version {stored}; this library uses "
                f"version {version} (use a matching scope-router, or a new database)"
            )


#: SQLSTATE classes of errors that come from the statement or its data, not from the moment:
#: sending the same statement again fails again (data, integrity, syntax or access, limits, a raise)
_PERMANENT_CLASSES = ("22", "23", "42", "54", "P0", "2F", "0A")


def _permanent(psycopg: Any, exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None)
    if state:
        return state[:2] in _PERMANENT_CLASSES
    # raised by the driver before sending (e.g. a NUL byte in a text value): the same every time
    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.NotSupportedError))


@contextlib.contextmanager
def translate_errors(doing: str) -> Iterator[None]:
    """Turn a driver error raised while ``doing`` into a `SharedStoreError` that names it: a
    timeout, a lock wait, a lost connection, or the server's own reason (a constraint, a limit such
    as an index row too large) with its SQLSTATE. ``permanent`` marks errors a retry cannot fix."""
    psycopg = _psycopg()
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:
        raise SharedStoreError(f"PostgreSQL timed out {doing}: {_first_line(exc)}") from None
    except psycopg.errors.LockNotAvailable as exc:
        raise SharedStoreError(f"PostgreSQL lock wait timed out {doing}: {_first_line(exc)}") from None
    except psycopg.Error as exc:
        state = getattr(exc, "sqlstate", None)
        if isinstance(exc, psycopg.OperationalError) and (not state or state[:2] in ("08", "57")):
            err = SharedStoreError(f"lost the PostgreSQL connection {doing}: {_first_line(exc)}")
        else:
            code = f" [SQLSTATE {state}]" if state else ""
            err = SharedStoreError(f"PostgreSQL refused {doing}: {_first_line(exc)}{code}")
        err.permanent = _permanent(psycopg, exc)
        raise err from None


class Session:
    """One lazily (re)opened connection, shared by a process's threads under a lock.

    A call that finds the connection broken (the server restarted, a network drop) opens a new one
    first; a call whose connection breaks *during* it fails with a `SharedStoreError` and is not
    retried (a reservation that may have committed must not be made twice).
    """

    def __init__(self, url: str, timeouts: Timeouts | None = None) -> None:
        self.url = url
        self.timeouts = timeouts or Timeouts()
        self._conn: psycopg.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Session({describe(self.url)!r})"

    def connection(self) -> "psycopg.Connection":
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's socket is not ours to use
                self._conn, self._pid = None, os.getpid()
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect(self.url, self.timeouts)
            return self._conn

    def run(self, doing: str, work: Callable[["psycopg.Connection"], T]) -> T:
        """``work(conn)`` inside one transaction, errors translated."""
        with self._lock:
            conn = self.connection()
            with translate_errors(doing), conn.transaction():
                return work(conn)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
