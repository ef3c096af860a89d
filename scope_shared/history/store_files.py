"""Reading a history store's files as untrusted input.

A store directory may come from anywhere (a shared drive, a download, an attacker), and its
manifest is as untrusted as its data files: recomputing a checksum is easy. So nothing here trusts
a declared size or name:

- a file is opened only by a plain name (no path separators, no leading dot), never through a
  symlink and without blocking (a FIFO named like a store file would otherwise hang the open), and
  must be a regular file; its real size (``fstat``) bounds what is read, and where a checksum is
  expected it is computed in small chunks before the file is read into memory;
- ``.npy`` headers are parsed first and the array they declare must fit the bytes really there,
  exactly, before numpy allocates anything (an 80-byte header may declare a 745 GB array);
- ``.npz`` archives must hold exactly the expected, uncompressed members (a 3 MB zip bomb declares
  gigabytes), each checked like an ``.npy`` file;
- JSON is parsed with depth and text checks (a lone surrogate would poison every later save).

Every failure raises `HistoryStoreError` (or the ``error`` class a caller passes: the anchor pack
loader reads its files with these same functions and raises `AnchorPackError`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.errors import HistoryStoreError
from scope_shared.query import unencodable_at

MAX_MANIFEST_BYTES = 64 << 20
#: numpy's own header limit: an npy header is a short dict literal
MAX_NPY_HEADER_BYTES = 10_000
_CHUNK = 1 << 22


def plain_name(name: Any, error: type[Exception] = HistoryStoreError) -> str:
    """``name`` if it is a plain file name a writer of this library could have produced."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 255
        or name.startswith(".")
        or any(c in name for c in "/\\\x00:")
        or name != os.path.basename(name)
    ):
        raise error(f"file name {str(name)[:80]!r} is not a plain file name")
    return name


def read_file(
    folder: Path, name: str, max_bytes: int | None = None, *, sha256: Any = None,
    error: type[Exception] = HistoryStoreError,
) -> bytes:
    """The bytes of regular file ``folder/name`` (never through a symlink, never blocking on a FIFO
    or device), at most ``max_bytes``. With ``sha256`` (the expected hex digest) the file is hashed
    in chunks first and read into memory only if it matches."""
    plain_name(name, error)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(folder / name, flags)
    except FileNotFoundError:
        raise error(f"{name} is missing") from None
    except OSError as exc:
        raise error(f"cannot open {name}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{name} is not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise error(f"{name} is {st.st_size} bytes, above the {max_bytes} limit")
        if sha256 is not None:
            digest = hashlib.sha256()
            for chunk in _chunks(fd, st.st_size):
                digest.update(chunk)
            if not isinstance(sha256, str) or digest.hexdigest() != sha256:
                raise error(f"checksum mismatch in {name}")
        data = b"".join(_chunks(fd, st.st_size))
        if len(data) != st.st_size:
            raise error(f"{name} changed size while it was read")
        return data
    except OSError as exc:
        raise error(f"cannot read {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _chunks(fd: int, size: int) -> Any:
    """The file's first ``size`` bytes, from offset 0, in chunks (stops early if it shrank)."""
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(size - offset, _CHUNK), offset)
        if not chunk:
            return
        offset += len(chunk)
        yield chunk


def parse_json(data: bytes, what: str, error: type[Exception] = HistoryStoreError) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        raise error(f"{what} is not valid JSON ({type(exc).__name__})") from None


def clean_str(value: Any, what: str, allow_none: bool = False) -> str | None:
    """A string from a store file that can be written back (no lone surrogates)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or unencodable_at(value) is not None:
        raise HistoryStoreError(f"{what} is not a clean string")
    return value


def parse_npy(
    data: bytes, what: str, kinds: str, shape: tuple[int | None, ...], error: type[Exception] = HistoryStoreError,
) -> np.ndarray:
    """An array from ``.npy`` bytes, read without copying, after checking its header.

    ``kinds``: allowed dtype kinds (e.g. ``"f"``); ``shape``: the expected shape, None where any.
    """
    buf = io.BytesIO(data)
    try:
        major, _minor = np.lib.format.read_magic(buf)
        if major == 1:
            declared, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif major in (2, 3):
            declared, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"npy format version {major}")
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many kinds (tokenize, syntax, ...)
        raise error(f"{what}: unreadable npy header ({type(exc).__name__}: {str(exc)[:120]})") from None
    if dtype.hasobject or dtype.kind not in kinds or dtype.subdtype is not None or fortran:
        raise error(f"{what}: dtype {dtype} is not allowed here")
    if len(declared) != len(shape) or any(w is not None and w != d for w, d in zip(shape, declared)):
        raise error(f"{what}: shape {declared} does not match the expected {shape}")
    count = 1
    for d in declared:
        count *= int(d)
    offset = buf.tell()
    if count * dtype.itemsize != len(data) - offset:
        raise error(
            f"{what}: header declares {count * dtype.itemsize} bytes of data, the file holds {len(data) - offset}"
        )
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(declared)


def parse_npz(data: bytes, what: str, columns: dict[str, str], n: int) -> dict[str, np.ndarray]:
    """Columns ``{name: allowed dtype kinds}`` of length ``n`` from an uncompressed ``.npz``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            if sorted(names) != sorted(f"{c}.npy" for c in columns):
                raise HistoryStoreError(f"{what}: members {names[:12]} are not the expected columns")
            out = {}
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                    raise HistoryStoreError(f"{what}: member {info.filename} is compressed (not written by this library)")
                if info.file_size > len(data):
                    raise HistoryStoreError(f"{what}: member {info.filename} declares more bytes than the file holds")
                col = info.filename[: -len(".npy")]
                out[col] = parse_npy(z.read(info), f"{what}/{info.filename}", columns[col], (n,))
            return out
    except HistoryStoreError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
        raise HistoryStoreError(f"{what} is not a readable npz archive ({type(exc).__name__}: {str(exc)[:120]})") from None


def parse_questions(data: bytes, n: int | None) -> tuple[list[str], list[str | None]]:
    """Question texts and benchmarks from the ``questions`` JSON lines (exactly ``n``, if given)."""
    try:
        lines = [line for line in data.decode("utf-8").split("\n") if line]
    except UnicodeDecodeError:
        raise HistoryStoreError("questions file is not UTF-8") from None
    if n is not None and len(lines) != n:
        raise HistoryStoreError(f"questions file holds {len(lines)} questions, the manifest says {n}")
    texts, benches = [], []
    for i, line in enumerate(lines):
        row = parse_json(line.encode(), f"question #{i}")
        if not isinstance(row, dict):
            raise HistoryStoreError(f"question #{i} is not an object")
        text = clean_str(row.get("text"), f"question #{i} text")
        if not text or not text.strip():
            raise HistoryStoreError(f"question #{i} text is empty")
        texts.append(text)
        benches.append(clean_str(row.get("benchmark"), f"question #{i} benchmark", allow_none=True))
    return texts, benches


def name_table(value: Any, what: str) -> list[str]:
    """A list of distinct, non-empty, clean names (the manifest's outcome models and sources)."""
    if not isinstance(value, list):
        raise HistoryStoreError(f"manifest {what} is not a list")
    names = [clean_str(v, f"manifest {what} entry") for v in value]
    if any(not v or not v.strip() or v != v.strip() for v in names) or len(set(names)) != len(names):
        raise HistoryStoreError(f"manifest {what} must be distinct, non-empty, stripped names")
    return names  # type: ignore[return-value]


def check_int(value: Any, what: str, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise HistoryStoreError(f"manifest {what} must be an integer >= {low}, got {str(value)[:40]}")
    return value


def expect_keys(obj: Any, keys: Sequence[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != set(keys):
        raise HistoryStoreError(f"manifest {what} must name exactly {', '.join(keys)}")
    return obj
