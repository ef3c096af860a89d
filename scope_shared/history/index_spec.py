"""The allow-list of vector index kinds, checked before faiss ever sees a spec.

faiss kills the whole process (SIGSEGV / SIGFPE) on some factory strings, e.g. ``RR0,Flat``,
``HNSW1`` or ``IVF1,PQ1x0``, and a history manifest is untrusted input. So a spec is either one of
the named kinds (``ALIASES``, ``auto``, ``flat``) or a factory string of this grammar, with every
size checked::

    encoding            Flat | SQ4 | SQ6 | SQ8 | SQfp16 | PQ<m>[x<bits>]
    spec                encoding | IVF<nlist>,encoding | HNSW<M>[,Flat|SQ4|SQ6|SQ8|SQfp16]

with ``1 <= nlist <= MAX_NLIST``, ``2 <= M <= MAX_HNSW_M``, ``m`` dividing the dimension and
``1 <= bits <= 16``. Anything else (transforms such as ``RR``/``PCA``/``OPQ``, refinements, other
index types) raises `ScopeError` naming the problem.
"""

from __future__ import annotations

import re

from scope_shared.errors import InvalidSettingError

ALIASES = {
    "fp16": "SQfp16",
    "sq8": "SQ8",
    "ivf-sq8": "IVF{nlist},SQ8",
    "ivf-pq": "IVF{nlist},PQ{pq_m}",
    "hnsw-sq8": "HNSW32,SQ8",
}
NAMED = ("auto", "flat", *ALIASES)

MAX_DIM = 65_536
MAX_NLIST = 1 << 18
MAX_HNSW_M = 256
MAX_EF_SEARCH = 1 << 16
MAX_PQ_BITS = 16

_SQ = {"SQ4", "SQ6", "SQ8", "SQfp16"}
_PQ_RE = re.compile(r"PQ([0-9]{1,6})(?:x([0-9]{1,3}))?")
_IVF_RE = re.compile(r"IVF([0-9]{1,7})")
_HNSW_RE = re.compile(r"HNSW([0-9]{1,4})")


def _bad(spec: str, why: str) -> InvalidSettingError:
    return InvalidSettingError(
        f"bad vector index spec {spec[:80]!r}: {why} (allowed: {', '.join(NAMED)}, or Flat, SQ8, "
        "PQ<m>[x<bits>], IVF<n>,<encoding>, HNSW<M>[,<SQ encoding>])"
    )


def _check_encoding(spec: str, part: str, dim: int, allow_pq: bool = True) -> None:
    if part == "Flat" or part in _SQ:
        return
    m = _PQ_RE.fullmatch(part)
    if m is None or not allow_pq:
        raise _bad(spec, f"unknown encoding {part[:40]!r}")
    n_sub = int(m.group(1))
    bits = 8 if m.group(2) is None else int(m.group(2))
    if not 1 <= n_sub <= dim or dim % n_sub:
        raise _bad(spec, f"PQ{n_sub} needs a number of sub-quantisers dividing the dimension {dim}")
    if not 1 <= bits <= MAX_PQ_BITS:
        raise _bad(spec, f"PQ bits must be between 1 and {MAX_PQ_BITS}, got {bits}")


def check_factory_string(dim: int, spec: str) -> str:
    """Return ``spec`` if faiss can safely build it for ``dim``-d vectors, else raise `ScopeError`."""
    if not isinstance(spec, str) or not spec or len(spec) > 64:
        raise _bad(str(spec), "not a short non-empty string")
    parts = spec.split(",")
    if len(parts) == 1:
        h = _HNSW_RE.fullmatch(parts[0])
        if h is not None:
            _check_hnsw(spec, int(h.group(1)))
            return spec
        _check_encoding(spec, parts[0], dim)
        return spec
    if len(parts) != 2:
        raise _bad(spec, "at most two comma-separated parts")
    coarse, enc = parts
    if (m := _IVF_RE.fullmatch(coarse)) is not None:
        n = int(m.group(1))
        if not 1 <= n <= MAX_NLIST:
            raise _bad(spec, f"IVF cells must be between 1 and {MAX_NLIST}, got {n}")
        _check_encoding(spec, enc, dim)
        return spec
    if (h := _HNSW_RE.fullmatch(coarse)) is not None:
        _check_hnsw(spec, int(h.group(1)))
        _check_encoding(spec, enc, dim, allow_pq=False)
        return spec
    raise _bad(spec, f"unknown coarse part {coarse[:40]!r}")


def _check_hnsw(spec: str, m: int) -> None:
    if not 2 <= m <= MAX_HNSW_M:
        raise _bad(spec, f"HNSW links per node must be between 2 and {MAX_HNSW_M}, got {m}")


def check_index_config(
    dim: object, spec: object, nlist: object, nprobe: object, pq_m: object, ef_search: object,
    train_size: object, auto_threshold: object,
) -> None:
    """Reject any `VectorIndex` configuration faiss could crash on (or allocate absurdly for)."""

    def positive(name: str, v: object, top: int | None = None) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1 or (top is not None and v > top):
            limit = f" at most {top}" if top is not None else ""
            raise InvalidSettingError(f"vector index {name} must be a positive integer{limit}, got {v!r}")
        return v

    if not isinstance(spec, str) or not spec.strip():
        raise InvalidSettingError(f"vector index spec must be a non-empty string, got {spec!r}")
    d = positive("dim", dim, MAX_DIM)
    n = positive("nlist", nlist, MAX_NLIST)
    positive("nprobe", nprobe, MAX_NLIST)
    m = positive("pq_m", pq_m, MAX_DIM)
    positive("ef_search", ef_search, MAX_EF_SEARCH)
    positive("auto_threshold", auto_threshold)
    if train_size is not None and positive("train_size", train_size) < n and ("ivf" in spec.lower()):
        raise InvalidSettingError(f"vector index train_size ({train_size}) must be at least nlist ({n})")
    if spec == "ivf-pq" and d % m:
        raise InvalidSettingError(f"ivf-pq needs pq_m ({m}) to divide the dimension ({d})")
    if spec in ("auto", "flat"):
        return
    check_factory_string(d, ALIASES[spec].format(nlist=n, pq_m=m) if spec in ALIASES else spec)
