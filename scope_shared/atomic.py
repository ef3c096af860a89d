"""Crash-safe file writes: write to a temporary file, fsync, then rename over the target.

A process killed mid-write leaves its temporary file behind (``.<target name>.<random>.tmp``);
`sweep_temp_files` removes such leftovers (the history store does on every save, under its lock).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``; rename it into place only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    data = json.dumps(obj, indent=2, sort_keys=True).encode()
    atomic_write(path, lambda f: f.write(data))


_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{6,}\.tmp$")


def temp_target(name: str) -> str | None:
    """The file a temporary name of `atomic_write` was for, or None if it is not one."""
    m = _TEMP_RE.match(name)
    return m.group("target") if m else None


def sweep_temp_files(
    folder: Path, keep: Callable[[str], bool] = lambda target: False, older_than_s: float = 0.0
) -> int:
    """Delete `atomic_write` temporaries in ``folder`` left by writers that died; returns how many.

    Only call this where no live writer can be mid-write (under the folder's lock), or give
    ``older_than_s`` so that a write in progress is not touched. ``keep(target)`` spares the
    temporaries of some targets.
    """
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        target = temp_target(entry.name)
        if target is None or keep(target):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if older_than_s and now - entry.stat(follow_symlinks=False).st_mtime < older_than_s:
                continue
            os.unlink(entry.path)
            removed += 1
        except OSError:
            continue
    return removed
