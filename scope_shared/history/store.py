"""On-disk format of a history directory: safe (no pickle), versioned, written atomically.

Layout::

    manifest.json            format, version, generation, save_id, dim, embedder, file names + sha256
    questions-<gen>.jsonl    {"text", "benchmark"} per question, in id order
    embeddings-<gen>.npy     float32 (n, dim)
    outcomes-<gen>.npz       columns, one row per outcome (version 2): q (int32), model and source
                             (int codes into the manifest's outcome_models / outcome_sources),
                             correct (float64), output_tokens, input_tokens, latency_s (float32,
                             NaN = unknown). Version 1 stores (outcomes-<gen>.jsonl, one
                             {"q", "model", "correct", ...} per line) are still read.
    cards-<gen>.json         model cards known to this history (may be empty)

A save writes the data files of a new generation first, then replaces ``manifest.json`` in one
rename, then deletes the previous generation: a crash at any point leaves either the old or the
new store complete. Loading verifies every checksum.

Many processes: a save holds an exclusive ``flock`` on the directory, so saves are serialised; a
load that finds the store replaced under it (a file of the generation it read is gone) reads it
again under a shared lock, which no save can interleave, so loads never fail spuriously. A history
loaded from (or saved to) a directory remembers which save it holds (``save_id``); if another
writer saved there since, its save fails with `HistoryStoreError` instead of silently dropping that
writer's outcomes (load again with the feedback log attached, then save). A history that never came
from the directory replaces what is there. A save sweeps the temporary files killed saves left.

Loading treats the directory as untrusted (`scope_shared.history.store_files`): plain file names
only, index specs from the allow-list, every size checked against the real file before anything is
allocated, and every failure a `HistoryStoreError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.atomic import atomic_write, atomic_write_json, sweep_temp_files
from scope_shared.cards import ModelCard
from scope_shared.errors import HistoryStoreError, ScopeError
from scope_shared.history.history import History
from scope_shared.history.locks import DEFAULT_TIMEOUT_S, file_lock
from scope_shared.history.store_files import (
    MAX_MANIFEST_BYTES,
    MAX_NPY_HEADER_BYTES,
    check_int,
    clean_str,
    expect_keys,
    name_table,
    parse_json,
    parse_npy,
    parse_npz,
    parse_questions,
    read_file,
)
from scope_shared.history.index_spec import MAX_DIM

FORMAT = "scope-history"
VERSION = 2
READABLE = (1, 2)
OUTCOME_COLUMNS = ("q", "model", "source", "correct", "output_tokens", "input_tokens", "latency_s")
_COLUMN_KINDS = {"q": "iu", "model": "iu", "source": "iu", "correct": "f", "output_tokens": "f", "input_tokens": "f", "latency_s": "f"}
MANIFEST = "manifest.json"
KEYS = ("questions", "embeddings", "outcomes", "cards")
_EXT = {1: {"questions": "jsonl", "embeddings": "npy", "outcomes": "jsonl", "cards": "json"},
        2: {"questions": "jsonl", "embeddings": "npy", "outcomes": "npz", "cards": "json"}}
_DATA_RE = re.compile(r"^(questions|embeddings|outcomes|cards)-([0-9]{1,18})\.(jsonl|npy|npz|json)$")
#: how often a load starts again when the store changed under it
LOAD_ATTEMPTS = 5


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _as_dir(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise HistoryStoreError(f"a history store path must be a non-empty str or path, got {path!r}")
    return Path(path)


def _key(path: Path) -> str:
    return str(path.resolve())


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise HistoryStoreError(f"history directory {str(path)!r} does not exist")
    try:
        raw = read_file(path, MANIFEST, MAX_MANIFEST_BYTES)
    except HistoryStoreError as exc:
        if "missing" in str(exc):
            raise HistoryStoreError(f"{str(path)!r} is not a history store: {MANIFEST} is missing") from None
        raise HistoryStoreError(f"history store {str(path)!r} is corrupt: {exc}") from None
    try:
        manifest = parse_json(raw, "manifest")
    except HistoryStoreError as exc:
        raise HistoryStoreError(f"history store {str(path)!r} is corrupt: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise HistoryStoreError(f"{str(path)!r} is not a SCOPE history store (format field missing)")
    if manifest.get("version") not in READABLE or isinstance(manifest.get("version"), bool):
        raise HistoryStoreError(
            f"history store {str(path)!r} has format version {repr(manifest.get('version'))[:40]}; "
            f"this library reads versions {', '.join(map(str, READABLE))}"
        )
    return manifest


def _current(path: Path) -> tuple[int, str] | None:
    """(generation, save id) of the store at ``path``, or None where there is no readable one."""
    try:
        m = _read_manifest(path)
        gen = check_int(m.get("generation"), "generation", 1)
    except HistoryStoreError:
        return None
    save_id = m.get("save_id")
    return gen, save_id if isinstance(save_id, str) else f"generation {gen}"


def _next_generation(path: Path, current: tuple[int, str] | None) -> int:
    """One above every generation in the manifest or in a data file name (never reuse one)."""
    top = current[0] if current else 0
    for entry in os.scandir(path):
        m = _DATA_RE.match(entry.name)
        if m:
            top = max(top, int(m.group(2)))
    return top + 1


def save_history(history: History, path: Any, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """Write ``history`` to ``path`` (see the module docstring for the guarantees)."""
    path = _as_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HistoryStoreError(f"cannot create history directory {str(path)!r}: {exc.strerror or exc}") from None
    with file_lock(path, exclusive=True, timeout=timeout, what=f"history store {str(path)!r}"):
        current = _current(path)
        known = history._saved_as.get(_key(path))
        if known is not None and current is not None and current[1] != known:
            raise HistoryStoreError(
                f"history store {str(path)!r} was saved by another writer since this history was loaded "
                f"from it (now generation {current[0]}); nothing was written. Load it again (and attach "
                "the feedback log) to include both writers' outcomes, then save."
            )
        sweep_temp_files(path, keep=lambda target: not (target == MANIFEST or _DATA_RE.match(target)))
        gen = _next_generation(path, current)
        save_id = uuid.uuid4().hex
        _write_generation(history, path, gen, save_id)
        history._saved_as[_key(path)] = save_id


def _blobs(history: History) -> dict[str, bytes]:
    n = len(history)
    blobs: dict[str, bytes] = {}
    blobs["questions"] = _jsonl([{"text": history.text(i), "benchmark": history.benchmark(i)} for i in range(n)])
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(history.embeddings), allow_pickle=False)
    blobs["embeddings"] = buf.getvalue()
    log = history.outcome_log
    buf = io.BytesIO()
    np.savez(buf, q=log.column("qid"), model=log.column("model"), source=log.column("source"),
             correct=log.column("correct"), output_tokens=log.column("output_tokens"),
             input_tokens=log.column("input_tokens"), latency_s=log.column("latency_s"))
    blobs["outcomes"] = buf.getvalue()
    blobs["cards"] = json.dumps([c.model_dump() for c in history.cards.values()], indent=1).encode()
    return blobs


def _write_generation(history: History, path: Path, gen: int, save_id: str) -> None:
    blobs = _blobs(history)
    log = history.outcome_log
    files = {key: f"{key}-{gen}.{_EXT[VERSION][key]}" for key in blobs}
    for key, data in blobs.items():
        atomic_write(path / files[key], lambda f, d=data: f.write(d))
    atomic_write_json(
        path / MANIFEST,
        {
            "format": FORMAT,
            "version": VERSION,
            "generation": gen,
            "save_id": save_id,
            "dim": history.dim,
            "embedder": history.embedder_name,
            "n_questions": len(history),
            "n_outcomes": history.n_records,
            "index": history.index.config(),
            "feedback_applied": dict(history.feedback_applied),
            "outcome_models": list(log.model_names),
            "outcome_sources": list(log.source_names),
            "files": files,
            "sha256": {key: _sha256(data) for key, data in blobs.items()},
        },
    )
    for stale in path.iterdir():
        if stale.name not in files.values() and _DATA_RE.match(stale.name) and stale.is_file():
            stale.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- loading
_OUTCOME_KEYS = {"q", "model", "correct", "output_tokens", "input_tokens", "latency_s", "source"}


def _add_outcome_rows(history: History, rows: list[Any]) -> None:
    """Add stored outcome rows in one validated bulk call (same rules as `Outcome`)."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"q", "model", "correct"} <= row.keys() or not row.keys() <= _OUTCOME_KEYS:
            raise HistoryStoreError(f"outcome row #{i} is malformed: {str(row)[:200]}")
        for key in ("q", "correct", "output_tokens", "input_tokens", "latency_s"):
            v = row.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise HistoryStoreError(f"outcome row #{i}: {key} is not a number")
        clean_str(row["model"], f"outcome row #{i} model")
        clean_str(row.get("source", "benchmark"), f"outcome row #{i} source")

    def col(key: str) -> list[float]:
        return [float("nan") if r.get(key) is None else r[key] for r in rows]

    history.add_outcome_arrays(
        col("q"), [r["model"] for r in rows], col("correct"), col("output_tokens"),
        input_tokens=col("input_tokens"), latency_s=col("latency_s"),
        source=[r.get("source", "benchmark") for r in rows],
    )


def _add_outcome_columns(history: History, data: bytes, manifest: dict[str, Any]) -> None:
    """Add a version-2 columnar outcome file in one validated bulk call."""
    n = check_int(manifest.get("n_outcomes"), "n_outcomes")
    cols = parse_npz(data, "outcome columns", _COLUMN_KINDS, n)
    models = name_table(manifest.get("outcome_models"), "outcome_models")
    sources = name_table(manifest.get("outcome_sources"), "outcome_sources")
    history.add_outcome_arrays(
        cols["q"], models, cols["correct"], cols["output_tokens"],
        input_tokens=cols["input_tokens"], latency_s=cols["latency_s"], source=sources,
        model_codes=cols["model"], source_codes=cols["source"],
    )


def _feedback_marks(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise HistoryStoreError("manifest feedback_applied is not a mapping of names to integers")
    return {k: check_int(v, "feedback_applied entry") for k, v in value.items()}


#: what one question line may take in the questions file (a long prompt, JSON-escaped)
MAX_QUESTION_LINE_BYTES = 16 << 20
#: an npz column's zip and npy framing, at most
_NPZ_MEMBER_OVERHEAD = 1 << 14


def _size_limits(manifest: dict[str, Any], version: int, dim: int) -> dict[str, int]:
    """The most bytes each data file may hold, from the counts the manifest declares: a file
    bigger than its data needs (e.g. a sparse 1.5 GiB file) is refused before it is read."""
    limits = {"cards": MAX_MANIFEST_BYTES}
    if manifest.get("n_questions") is not None:
        n_q = check_int(manifest["n_questions"], "n_questions")
        limits["questions"] = (n_q + 1) * MAX_QUESTION_LINE_BYTES
        limits["embeddings"] = MAX_NPY_HEADER_BYTES + 16 + n_q * dim * 4
    if version >= 2:
        n_o = check_int(manifest.get("n_outcomes"), "n_outcomes")
        limits["outcomes"] = len(OUTCOME_COLUMNS) * (_NPZ_MEMBER_OVERHEAD + 8 * n_o)
    return limits


def _load_once(path: Path) -> History:
    manifest = _read_manifest(path)
    version = manifest["version"]
    gen = check_int(manifest.get("generation"), "generation", 1)
    dim = check_int(manifest.get("dim"), "dim", 1, MAX_DIM)
    files = expect_keys(manifest.get("files"), KEYS, "files")
    sums = expect_keys(manifest.get("sha256"), KEYS, "sha256")
    limits = _size_limits(manifest, version, dim)
    blobs = {}
    for key in KEYS:
        expected = f"{key}-{gen}.{_EXT[version][key]}"
        if files[key] != expected:
            raise HistoryStoreError(f"manifest names {str(files[key])[:80]!r} for {key}, expected {expected!r}")
        if not isinstance(sums[key], str):
            raise HistoryStoreError(f"checksum mismatch in {expected}")
        blobs[key] = read_file(path, expected, limits.get(key), sha256=sums[key])
    n_q = manifest.get("n_questions")
    texts, benches = parse_questions(blobs["questions"], None if n_q is None else check_int(n_q, "n_questions"))
    emb = parse_npy(blobs["embeddings"], "embeddings", "f", (len(texts), dim))
    cards = parse_json(blobs["cards"], "cards")
    if not isinstance(cards, list) or not all(isinstance(c, dict) for c in cards):
        raise HistoryStoreError("cards file is not a list of objects")
    embedder = clean_str(manifest.get("embedder"), "manifest embedder", allow_none=True)
    try:
        history = History(dim, embedder, index=manifest.get("index"))
        history.add_questions(texts, emb, benches)
        if version == 1:
            rows = [parse_json(line, f"outcome row #{i}") for i, line in enumerate(blobs["outcomes"].split(b"\n")) if line]
            _add_outcome_rows(history, rows)
        else:
            _add_outcome_columns(history, blobs["outcomes"], manifest)
        history.cards = {c.name: c for c in (ModelCard.create(**{str(k): v for k, v in c.items()}) for c in cards)}
    except HistoryStoreError:
        raise
    except ScopeError as exc:  # the history's own validation of what the files hold
        raise HistoryStoreError(f"{type(exc).__name__}: {exc}") from None
    if "n_outcomes" in manifest and check_int(manifest["n_outcomes"], "n_outcomes") != history.n_records:
        raise HistoryStoreError(f"the manifest says {manifest['n_outcomes']} outcomes, the files hold {history.n_records}")
    history.feedback_applied = _feedback_marks(manifest.get("feedback_applied"))
    save_id = manifest.get("save_id")
    history._saved_as[_key(path)] = save_id if isinstance(save_id, str) else f"generation {gen}"
    return history


def load_history(path: Any, timeout: float = DEFAULT_TIMEOUT_S) -> History:
    """Read a store written by `save_history`, verifying version, names, sizes and checksums.

    The first attempt takes no lock (loads never hold up a saver); if it fails while another
    writer replaced the store, it is read again under a shared lock, which no save can interleave.
    """
    path = _as_dir(path)
    if not path.is_dir():
        raise HistoryStoreError(f"history directory {str(path)!r} does not exist")
    for attempt in range(LOAD_ATTEMPTS):
        lock = file_lock(path, exclusive=False, timeout=timeout, what=f"history store {str(path)!r}") if attempt else nullcontext()
        with lock:
            before = _current(path)
            try:
                return _load_once(path)
            except HistoryStoreError as exc:
                if _current(path) == before or attempt == LOAD_ATTEMPTS - 1:
                    if str(exc).startswith(("history ", f"{str(path)!r}")):
                        raise
                    raise HistoryStoreError(f"history store {str(path)!r} is corrupt: {exc}") from None
        time.sleep(0.01 * attempt)  # another writer replaced the store meanwhile: read it again
    raise AssertionError("unreachable")  # pragma: no cover
