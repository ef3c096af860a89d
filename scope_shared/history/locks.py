"""Advisory file locks between processes: one writer at a time per store and per feedback log.

`file_lock` takes a ``flock`` (shared for readers, exclusive for writers) on a file or directory, waiting up
to ``timeout`` seconds; it raises `HistoryStoreError` when the wait runs out. ``flock`` locks belong
to an open file description, so two handles in one process exclude each other too, and the kernel
drops a lock when its holder dies (a killed saver never leaves a store locked).

Where ``fcntl`` is missing (Windows) or the file system cannot lock, locks are no-ops: stores stay
crash-safe (`scope_shared.atomic`) and loads still retry across a concurrent save, but concurrent
savers are not serialised.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scope_shared.errors import HistoryStoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

#: how long a save or a load waits for another process's lock by default
DEFAULT_TIMEOUT_S = 120.0
_POLL_S = 0.01
_UNSUPPORTED = {getattr(errno, n) for n in ("ENOLCK", "EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EINVAL") if hasattr(errno, n)}


def _acquire(fd: int, exclusive: bool, timeout: float, what: str) -> None:
    if fcntl is None:  # pragma: no cover
        return
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    delay = _POLL_S
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:  # e.g. some network file systems: go on unlocked
                return
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise HistoryStoreError(f"cannot lock {what}: {exc.strerror}") from None
        if time.monotonic() >= deadline:
            raise HistoryStoreError(
                f"{what} is locked by another process (waited {timeout:.0f} s); try again later"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@contextmanager
def file_lock(path: Path, *, exclusive: bool, timeout: float = DEFAULT_TIMEOUT_S, what: str | None = None) -> Iterator[None]:
    """Hold a lock on the existing file or directory ``path`` for the ``with`` block.

    The history store locks its directory itself, so a store needs no extra lock file and a
    read-only store can still be read under a shared lock.
    """
    what = what or repr(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise HistoryStoreError(f"cannot lock {what}: {exc.strerror or exc}") from None
    try:
        _acquire(fd, exclusive, timeout, what)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def fd_lock(fd: int, *, exclusive: bool, timeout: float = DEFAULT_TIMEOUT_S, what: str = "file") -> Iterator[None]:
    """Lock an already open descriptor for the ``with`` block (the feedback log's appends)."""
    _acquire(fd, exclusive, timeout, what)
    try:
        yield
    finally:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:  # pragma: no cover - a file system that could not lock in the first place
                pass
