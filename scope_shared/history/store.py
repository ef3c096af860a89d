"""On-disk format of a history directory: safe (no pickle), versioned, written atomically.

Layout::

    manifest.json            format, version, generation, dim, embedder, file names + sha256
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
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.atomic import atomic_write, atomic_write_json
from scope_shared.cards import ModelCard
from scope_shared.errors import HistoryStoreError
from scope_shared.history.history import History

FORMAT = "scope-history"
VERSION = 2
READABLE = (1, 2)
OUTCOME_COLUMNS = ("q", "model", "source", "correct", "output_tokens", "input_tokens", "latency_s")
MANIFEST = "manifest.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise HistoryStoreError(f"history directory {str(path)!r} does not exist")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise HistoryStoreError(f"{str(path)!r} is not a history store: {MANIFEST} is missing")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HistoryStoreError(f"history store {str(path)!r} is corrupt: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise HistoryStoreError(f"{str(path)!r} is not a SCOPE history store (format field missing)")
    if manifest.get("version") not in READABLE:
        raise HistoryStoreError(
            f"history store {str(path)!r} has format version {manifest.get('version')!r}; "
            f"this library reads versions {', '.join(map(str, READABLE))}"
        )
    return manifest


def save_history(history: History, path: Path) -> None:
    """Write ``history`` to ``path`` (see the module docstring for the guarantees)."""
    old_gen = None
    if (path / MANIFEST).is_file():
        try:
            old_gen = _read_manifest(path).get("generation")
        except HistoryStoreError:
            old_gen = None
    gen = (old_gen or 0) + 1
    n = len(history)
    blobs: dict[str, bytes] = {}
    blobs["questions"] = _jsonl(
        [{"text": history.text(i), "benchmark": history.benchmark(i)} for i in range(n)]
    )
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(history.embeddings), allow_pickle=False)
    blobs["embeddings"] = buf.getvalue()
    log = history.outcome_log
    buf = io.BytesIO()
    np.savez(
        buf,
        q=log.column("qid"),
        model=log.column("model"),
        source=log.column("source"),
        correct=log.column("correct"),
        output_tokens=log.column("output_tokens"),
        input_tokens=log.column("input_tokens"),
        latency_s=log.column("latency_s"),
    )
    blobs["outcomes"] = buf.getvalue()
    blobs["cards"] = json.dumps([c.model_dump() for c in history.cards.values()], indent=1).encode()
    ext = {"questions": "jsonl", "embeddings": "npy", "outcomes": "npz", "cards": "json"}
    files = {key: f"{key}-{gen}.{ext[key]}" for key in blobs}
    path.mkdir(parents=True, exist_ok=True)
    for key, data in blobs.items():
        atomic_write(path / files[key], lambda f, d=data: f.write(d))
    atomic_write_json(
        path / MANIFEST,
        {
            "format": FORMAT,
            "version": VERSION,
            "generation": gen,
            "dim": history.dim,
            "embedder": history.embedder_name,
            "n_questions": n,
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
        if stale.name != MANIFEST and stale.name not in files.values() and not stale.name.startswith("."):
            if any(stale.name.startswith(f"{key}-") for key in blobs):
                stale.unlink(missing_ok=True)


_OUTCOME_KEYS = {"q", "model", "correct", "output_tokens", "input_tokens", "latency_s", "source"}


def _add_outcome_rows(history: History, rows: list[dict[str, Any]]) -> None:
    """Add stored outcome rows in one validated bulk call (same rules as `Outcome`)."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"q", "model", "correct"} <= row.keys() or not row.keys() <= _OUTCOME_KEYS:
            raise HistoryStoreError(f"outcome row #{i} is malformed: {str(row)[:200]}")
        for key in ("q", "correct", "output_tokens", "input_tokens", "latency_s"):
            v = row.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise HistoryStoreError(f"outcome row #{i}: {key} is not a number")
        if not isinstance(row.get("source", "benchmark"), str):
            raise HistoryStoreError(f"outcome row #{i}: source is not a string")

    def col(key: str) -> list[float]:
        return [float("nan") if r.get(key) is None else r[key] for r in rows]

    history.add_outcome_arrays(
        col("q"),
        [r["model"] for r in rows],
        col("correct"),
        col("output_tokens"),
        input_tokens=col("input_tokens"),
        latency_s=col("latency_s"),
        source=[r.get("source", "benchmark") for r in rows],
    )


def _add_outcome_columns(history: History, data: bytes, manifest: dict[str, Any]) -> None:
    """Add a version-2 columnar outcome file in one validated bulk call."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            cols = {k: z[k] for k in OUTCOME_COLUMNS}
    except (KeyError, OSError, ValueError, EOFError) as exc:
        raise HistoryStoreError(f"outcome columns unreadable ({type(exc).__name__}: {exc})") from None
    n = len(cols["q"])
    if any(a.ndim != 1 or len(a) != n for a in cols.values()):
        raise HistoryStoreError("outcome columns have different lengths")
    if cols["q"].dtype.kind not in "iu" or any(cols[k].dtype.kind != "f" for k in OUTCOME_COLUMNS[3:]):
        raise HistoryStoreError("outcome columns have the wrong types")
    models, sources = manifest.get("outcome_models"), manifest.get("outcome_sources")
    if not isinstance(models, list) or not isinstance(sources, list):
        raise HistoryStoreError("manifest lacks outcome_models / outcome_sources")
    history.add_outcome_arrays(
        cols["q"], models, cols["correct"], cols["output_tokens"],
        input_tokens=cols["input_tokens"], latency_s=cols["latency_s"], source=sources,
        model_codes=cols["model"], source_codes=cols["source"],
    )


def load_history(path: Path) -> History:
    """Read a store written by `save_history`, verifying version and checksums."""
    manifest = _read_manifest(path)
    try:
        files, sums = manifest["files"], manifest["sha256"]
        blobs = {}
        for key in ("questions", "embeddings", "outcomes", "cards"):
            fpath = path / files[key]
            if not fpath.is_file():
                raise HistoryStoreError(f"history store {str(path)!r} is corrupt: {files[key]} is missing")
            data = fpath.read_bytes()
            if _sha256(data) != sums[key]:
                raise HistoryStoreError(
                    f"history store {str(path)!r} is corrupt: checksum mismatch in {files[key]}"
                )
            blobs[key] = data
        emb = np.load(io.BytesIO(blobs["embeddings"]), allow_pickle=False)
        questions = [json.loads(line) for line in blobs["questions"].decode().split("\n") if line]

        cards = json.loads(blobs["cards"])
        dim = int(manifest["dim"])
        if emb.shape != (len(questions), dim):
            raise HistoryStoreError(
                f"history store {str(path)!r} is corrupt: embeddings shape {emb.shape} "
                f"does not match {len(questions)} questions of dimension {dim}"
            )
        history = History(dim, manifest.get("embedder"), index=manifest.get("index"))
        history.add_questions(
            [q["text"] for q in questions], emb, [q.get("benchmark") for q in questions]
        )
        if manifest["version"] == 1:
            _add_outcome_rows(history, [json.loads(line) for line in blobs["outcomes"].decode().split("\n") if line])
        else:
            _add_outcome_columns(history, blobs["outcomes"], manifest)
        applied = manifest.get("feedback_applied") or {}
        if not isinstance(applied, dict) or not all(isinstance(v, int) for v in applied.values()):
            raise HistoryStoreError(f"history store {str(path)!r} is corrupt: bad feedback_applied")
        history.feedback_applied = {str(k): int(v) for k, v in applied.items()}
        history.cards = {c["name"]: ModelCard(**c) for c in cards}
        return history
    except HistoryStoreError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise HistoryStoreError(f"history store {str(path)!r} is corrupt: {type(exc).__name__}: {exc}") from None
