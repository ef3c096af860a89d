"""Untrusted anchor packs and history stores on disk: names, links, FIFOs, bombs and sparse files.

A pack or a store directory may come from a download or a shared drive. Each case copies the
bundled pack (or saves a small store), plants one hostile thing, and loads it: the load must raise
the library's error (`AnchorPackError`, `HistoryStoreError`) within seconds, read nothing outside
the directory, and allocate no more than the honest files would need (traced; a 1.6 GB gzip bomb
or a 1.5 GiB sparse file must not be read into memory), never ``MemoryError``, never a hang.
Checksums in the manifest are recomputed after a mutation wherever the case says so: an attacker
can do that too, so the checks behind the checksum must hold on their own.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from conftest import toy_history
from probe_common import Case, Verdict, fail, guarded, raised

from scope_shared import History
from scope_shared.errors import AnchorPackError, HistoryStoreError
from scope_shared.onboarding.pack import DEFAULT_PACK, PACKS_DIR, load_pack

PACK_GROUP, STORE_GROUP = "pack", "store-files"
GIB = 1 << 30
#: what a hostile load may allocate: well above the honest pack (5 MB) and well below the attacks
ALLOC_LIMIT_MB = 400.0


# ---------------------------------------------------------------- packs
def copy_pack(tmp: Path) -> Path:
    d = tmp / "pack"
    shutil.copytree(PACKS_DIR / DEFAULT_PACK, d)
    return d


def pack_manifest(d: Path) -> dict[str, Any]:
    return json.loads((d / "pack.json").read_text())


def write_pack_manifest(d: Path, m: dict[str, Any]) -> None:
    (d / "pack.json").write_text(json.dumps(m))


def rehash(d: Path, key: str) -> None:
    """Make the manifest's checksum of ``key`` agree with the file (as an attacker would)."""
    m = pack_manifest(d)
    digest = hashlib.sha256()
    with open(d / m["files"][key], "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    m["sha256"][key] = digest.hexdigest()
    write_pack_manifest(d, m)


def judge_pack(d: Path, deadline_s: float = 30.0, unblock: Callable[[], None] | None = None) -> Verdict:
    return guarded(lambda: load_pack(d), AnchorPackError, deadline_s=deadline_s, max_alloc_mb=ALLOC_LIMIT_MB,
                   unblock=unblock, accept=lambda p: fail(f"loaded the tampered pack ({p!r})"))


def _pack_outside(how: str) -> Callable[[Path], Verdict]:
    """A pack file named outside the pack (a real copy waits there, so following it would load)."""
    def run(tmp: Path) -> Verdict:
        d = copy_pack(tmp)
        m = pack_manifest(d)
        real = d / m["files"]["questions"]
        outside = tmp / "outside.jsonl.gz"
        shutil.copy(real, outside)
        real.unlink()
        if how == "symlink":
            real.symlink_to(outside)
        else:
            m["files"]["questions"] = {"dotdot": "../outside.jsonl.gz", "absolute": str(outside),
                                       "subdir": "sub/../../outside.jsonl.gz"}[how]
            write_pack_manifest(d, m)
        return judge_pack(d)
    return run


def _license_outside(tmp: Path) -> Verdict:
    """The licence named ``../secret``: loading (or `license_text`) must not read it."""
    d = copy_pack(tmp)
    secret = tmp / "secret"
    secret.write_text("private key material")
    m = pack_manifest(d)
    m["files"]["license"] = "../secret"
    m["sha256"]["license"] = hashlib.sha256(secret.read_bytes()).hexdigest()
    write_pack_manifest(d, m)

    def load() -> Any:
        p = load_pack(d)
        return p.license_text

    return guarded(load, AnchorPackError, max_alloc_mb=ALLOC_LIMIT_MB,
                   accept=lambda text: fail("read a file outside the pack" if text and "private" in text else "accepted ../secret"))


def gzip_bomb(decompressed: int, member: int = 16 << 20) -> bytes:
    """A multi-member gzip file of zeros: about 1 KB per 1 MB it inflates to."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    one = comp.compress(bytes(member)) + comp.flush()
    return one * (decompressed // member)


def _bomb(tmp: Path) -> Verdict:
    d = copy_pack(tmp)
    m = pack_manifest(d)
    (d / m["files"]["questions"]).write_bytes(gzip_bomb(1600 << 20))  # 1.6 MB -> 1.6 GB
    rehash(d, "questions")
    return judge_pack(d)


def _sparse(key: str, size: int, recompute: bool) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = copy_pack(tmp)
        m = pack_manifest(d)
        with open(d / m["files"][key], "r+b") as f:
            f.truncate(size)
        if recompute:
            rehash(d, key)
        return judge_pack(d, deadline_s=60.0)
    return run


def _npy(header: dict[str, Any], payload: bytes = b"", version: int = 1) -> bytes:
    buf = io.BytesIO()
    if version == 1:
        np.lib.format.write_array_header_1_0(buf, header)
    else:
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue() + payload


def _replace(key: str, make: Callable[[Path, dict[str, Any]], bytes]) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = copy_pack(tmp)
        m = pack_manifest(d)
        (d / m["files"][key]).write_bytes(make(d, m))
        rehash(d, key)
        return judge_pack(d)
    return run


def _huge_header(d: Path, m: dict[str, Any]) -> bytes:
    """An npy v2 header of 64 MB (numpy refuses headers above 10 KB unless told otherwise)."""
    head = b"{'descr': '<f2', 'fortran_order': False, 'shape': (10, 384), }"
    body = head + b" " * ((64 << 20) - len(head) - 1) + b"\n"
    return b"\x93NUMPY\x02\x00" + len(body).to_bytes(4, "little") + body


def _manifest_case(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = copy_pack(tmp)
        m = pack_manifest(d)
        edit(m)
        write_pack_manifest(d, m)
        return judge_pack(d)
    return run


def _manifest_text(text: Callable[[], str]) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = copy_pack(tmp)
        (d / "pack.json").write_text(text())
        return judge_pack(d)
    return run


def _sparse_manifest(tmp: Path) -> Verdict:
    d = copy_pack(tmp)
    with open(d / "pack.json", "r+b") as f:
        f.truncate(3 * GIB)
    return judge_pack(d, deadline_s=60.0)


def _fifo_pack(which: str) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = copy_pack(tmp)
        m = pack_manifest(d)
        target = d / ("pack.json" if which == "manifest" else m["files"][which])
        target.unlink()
        os.mkfifo(target)
        return judge_pack(d, deadline_s=10.0, unblock=lambda: _unblock_fifo(target))
    return run


def _unblock_fifo(path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def pack_cases() -> list[Case]:
    rows: list[tuple[str, Callable[[Path], Verdict]]] = []
    for how in ("dotdot", "absolute", "subdir", "symlink"):
        rows.append((f"questions file {how} outside the pack", _pack_outside(how)))
    rows += [
        ("licence named ../secret", _license_outside),
        ("questions gzip bomb 1.6 MB -> 1.6 GB", _bomb),
        ("embeddings sparse 1.5 GiB, stale checksum", _sparse("embeddings", 3 * GIB // 2, False)),
        ("embeddings sparse 1.5 GiB, checksum recomputed", _sparse("embeddings", 3 * GIB // 2, True)),
        ("questions sparse 1.5 GiB, checksum recomputed", _sparse("questions", 3 * GIB // 2, True)),
        ("embeddings npy declaring (10**12, 384)", _replace("embeddings", lambda d, m: _npy({"descr": "<f2", "fortran_order": False, "shape": (10**12, 384)}, b"\0" * 64))),
        ("scores npy declaring (10**6, 10**6)", _replace("scores", lambda d, m: _npy({"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}, b"\0" * 64))),
        ("embeddings npy header of 64 MB", _replace("embeddings", _huge_header)),
        ("embeddings object dtype", _replace("embeddings", lambda d, m: _npy({"descr": "|O", "fortran_order": False, "shape": (2, 2)}, b"\0" * 32))),
        ("pack.json sparse 3 GiB", _sparse_manifest),
        ("pack.json nested 100,000 deep", _manifest_text(lambda: '{"format": "scope-anchor-pack", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")),
        ("pack.json models not cards", _manifest_case(lambda m: m.__setitem__("models", [5, "x"]))),
        ("pack.json dim a string", _manifest_case(lambda m: m.__setitem__("dim", "384"))),
        ("pack.json files name /etc/passwd", _manifest_case(lambda m: m["files"].__setitem__("scores", "/etc/passwd"))),
        ("pack.json is a FIFO", _fifo_pack("manifest")),
        ("questions file is a FIFO", _fifo_pack("questions")),
    ]
    return [Case(PACK_GROUP, name, run) for name, run in rows]


# ---------------------------------------------------------------- history stores
def saved_store(tmp: Path) -> Path:
    d = tmp / "h"
    toy_history(per_topic=4).save(d)
    return d


def store_manifest(d: Path) -> dict[str, Any]:
    return json.loads((d / "manifest.json").read_text())


def _stat_listing(d: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in d.iterdir()}


def judge_store(d: Path, deadline_s: float = 30.0, unblock: Callable[[], None] | None = None) -> Verdict:
    """The load fails with `HistoryStoreError` in time, within the allocation limit, writing
    nothing; then a save into the directory works."""
    before = _stat_listing(d)
    v = guarded(lambda: History.load(d), HistoryStoreError, deadline_s=deadline_s, max_alloc_mb=ALLOC_LIMIT_MB,
                unblock=unblock, accept=lambda h: fail(f"loaded a tampered store ({len(h)} questions)"))
    if not v.ok:
        return v
    if _stat_listing(d) != before:
        return fail("the load wrote to the store")
    try:
        toy_history(per_topic=2).save(d)
        History.load(d)
    except Exception as exc:  # noqa: BLE001
        return fail(f"the broken store blocks the next save: {raised(exc)}")
    return v


def _fifo_store(key: str) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = saved_store(tmp)
        target = d / ("manifest.json" if key == "manifest" else store_manifest(d)["files"][key])
        target.unlink()
        os.mkfifo(target)
        return judge_store(d, deadline_s=10.0, unblock=lambda: _unblock_fifo(target))
    return run


def _sparse_store(key: str, recompute: bool) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = saved_store(tmp)
        m = store_manifest(d)
        target = d / m["files"][key]
        with open(target, "r+b") as f:
            f.truncate(3 * GIB // 2)
        if recompute:
            digest = hashlib.sha256()
            with open(target, "rb") as f:
                while chunk := f.read(1 << 24):
                    digest.update(chunk)
            m["sha256"][key] = digest.hexdigest()
            (d / "manifest.json").write_text(json.dumps(m))
        return judge_store(d, deadline_s=60.0)
    return run


def store_cases() -> list[Case]:
    rows: list[tuple[str, Callable[[Path], Verdict]]] = [
        ("manifest.json is a FIFO", _fifo_store("manifest")),
        ("questions file is a FIFO", _fifo_store("questions")),
        ("embeddings file is a FIFO", _fifo_store("embeddings")),
        ("embeddings sparse 1.5 GiB, stale checksum", _sparse_store("embeddings", False)),
        ("embeddings sparse 1.5 GiB, checksum recomputed", _sparse_store("embeddings", True)),
        ("questions sparse 1.5 GiB, checksum recomputed", _sparse_store("questions", True)),
        ("outcomes sparse 1.5 GiB, stale checksum", _sparse_store("outcomes", False)),
    ]
    return [Case(STORE_GROUP, name, run) for name, run in rows]


def cases() -> list[Case]:
    return [*pack_cases(), *store_cases()]
