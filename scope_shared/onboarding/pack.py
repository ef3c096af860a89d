"""Anchor packs: questions with reference answers, known models' outcomes and prices, embeddings.

A pack is a directory (format documented in ``docs/anchor-pack.md``)::

    pack.json            format, version, name, source, licence, embedder, dim, model cards,
                         file names and their sha256
    questions.jsonl.gz   one `AnchorQuestion` per line (text, benchmark, metric, reference, ...)
    embeddings.npy       float16 (n_questions, dim) unit vectors of the question texts
    scores.npy           float32 (n_questions, n_models) scores in [0, 1]; NaN = no outcome
    output_tokens.npy    optional, float32, same shape; NaN = unknown
    LICENSE              the licence of the source data

The package ships one, ``llmrouter-9`` (MIT), so a plain ``pip install`` routes and onboards offline
with no data directory: `load_pack()` verifies every checksum and `AnchorPack.history()` builds a
`History` from the stored embeddings in well under a second, without loading an embedder.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.errors import AnchorPackError, ScopeError
from scope_shared.history import History
from scope_shared.history.index_spec import MAX_DIM
from scope_shared.history.store_files import MAX_NPY_HEADER_BYTES, parse_json, parse_npy, plain_name, read_file
from scope_shared.onboarding.questions import AnchorQuestion

if TYPE_CHECKING:
    from scope_shared.data.table import RoutingTable

FORMAT = "scope-anchor-pack"
VERSION = 1
MANIFEST = "pack.json"
REQUIRED_FILES = ("questions", "embeddings", "scores")
PACKS_DIR = Path(__file__).resolve().parent / "packs"
DEFAULT_PACK = "llmrouter-9"
#: limits on what a pack's files may hold (a pack is untrusted input: see `load_pack`)
MAX_MANIFEST_BYTES = 16 << 20
MAX_FILE_BYTES = 1 << 30
MAX_QUESTIONS_BYTES = 128 << 20
MAX_LICENSE_BYTES = 1 << 20
_GUNZIP_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AnchorPack:
    """A loaded, verified anchor pack (read-only). Build histories and routing tables from it."""

    def __init__(
        self,
        manifest: dict[str, Any],
        questions: list[AnchorQuestion],
        embeddings: np.ndarray,
        scores: np.ndarray,
        output_tokens: np.ndarray | None = None,
        path: Path | None = None,
    ) -> None:
        self.manifest = manifest
        self.name: str = str(manifest.get("name") or (path.name if path else "pack"))
        self.path = path
        self.questions = questions
        self.embeddings = embeddings
        for arr in (embeddings, scores, output_tokens):
            if arr is not None:
                arr.flags.writeable = False  # packs are shared (cached): nobody may change one in place
        self.cards: dict[str, ModelCard] = {}
        for c in manifest.get("models", []):
            card = ModelCard.create(**c)
            self.cards[card.name] = card
        self.models = list(self.cards)
        self.scores = scores
        self.output_tokens = output_tokens
        n, m = len(questions), len(self.models)
        if embeddings.ndim != 2 or embeddings.shape[0] != n or embeddings.shape[1] != int(manifest.get("dim", -1)):
            raise AnchorPackError(f"anchor pack {self.name!r}: embeddings of shape {embeddings.shape} for {n} questions of dimension {manifest.get('dim')}")
        for label, arr in (("scores", scores), ("output_tokens", output_tokens)):
            if arr is not None and arr.shape != (n, m):
                raise AnchorPackError(f"anchor pack {self.name!r}: {label} of shape {arr.shape}, expected ({n}, {m})")
        if not np.all(np.isfinite(embeddings)):
            raise AnchorPackError(f"anchor pack {self.name!r}: embeddings contain NaN or infinite values")
        known = scores[np.isfinite(scores)]
        if known.size and (known.min() < 0 or known.max() > 1):
            raise AnchorPackError(f"anchor pack {self.name!r}: scores outside [0, 1]")
        self._by_text = {q.text: q for q in questions}
        if len(self._by_text) != n:
            raise AnchorPackError(f"anchor pack {self.name!r}: question texts must be unique")

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self.questions)

    def __repr__(self) -> str:
        return f"AnchorPack({self.name!r}, {len(self)} questions, {len(self.models)} models)"

    @property
    def embedder_name(self) -> str | None:
        return self.manifest.get("embedder")

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def benchmarks(self) -> list[str]:
        return [q.benchmark for q in self.questions]

    @property
    def license_text(self) -> str | None:
        """The source data's licence (shipped beside the pack)."""
        name = self.manifest.get("files", {}).get("license")
        if not self.path or not name:
            return None
        return _read_verified(self.path, self.manifest, "license").decode("utf-8", errors="replace")

    def find(self, text: str) -> AnchorQuestion | None:
        """The pack question with this routing text (stripped), if any."""
        return self._by_text.get(text.strip())

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """float32 embeddings of some questions (no embedder needed)."""
        return self.embeddings[np.asarray(ids, dtype=np.int64)].astype(np.float32)

    def info(self) -> dict[str, Any]:
        """A JSON-friendly description (what ``scope pack info`` prints)."""
        from collections import Counter

        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "source": self.manifest.get("source"),
            "questions": len(self),
            "benchmarks": dict(Counter(self.benchmarks)),
            "metrics": dict(Counter(q.metric for q in self.questions)),
            "models": {m: {"input_price": c.input_price, "output_price": c.output_price,
                           "outcomes": int(np.isfinite(self.scores[:, j]).sum())}
                       for j, (m, c) in enumerate(self.cards.items())},
            "embedder": self.embedder_name,
            "dim": self.dim,
            "notes": self.manifest.get("notes", []),
        }

    # ---------------------------------------------------------------- building from it
    def history(self, models: Sequence[str] | None = None, question_ids: Sequence[int] | np.ndarray | None = None) -> History:
        """A new `History` of the pack's questions (all, or ``question_ids`` in that order) and the
        known models' outcomes (all, or ``models``); cards included. Uses the stored embeddings."""
        models = list(self.models if models is None else models)
        unknown = [m for m in models if m not in self.cards]
        if unknown:
            raise AnchorPackError(f"anchor pack {self.name!r} has no model {unknown[0]!r} (it has {', '.join(self.models)})")
        ids = np.arange(len(self)) if question_ids is None else np.asarray(question_ids, dtype=np.int64)
        history = History(self.dim, self.embedder_name)
        history.add_questions([self.questions[i].text for i in ids], self.vectors(ids), [self.questions[i].benchmark for i in ids])
        for m in models:
            j = self.models.index(m)
            col = self.scores[ids, j]
            known = np.flatnonzero(np.isfinite(col))
            toks = None if self.output_tokens is None else self.output_tokens[ids[known], j]
            history.add_outcome_arrays(known, m, col[known], toks, source=self.name)
            history.cards[m] = self.cards[m]
        return history

    def to_table(self) -> "RoutingTable":
        """The pack's known outcomes as a `RoutingTable` (for the demo, evaluation and splits)."""
        from scope_shared.data.table import RoutingTable

        return RoutingTable(
            name=self.name,
            questions=[q.text for q in self.questions],
            benchmarks=self.benchmarks,
            models=list(self.models),
            scores=self.scores.astype(np.float64),
            cards=dict(self.cards),
            output_tokens=None if self.output_tokens is None else self.output_tokens.astype(np.float64),
            notes=list(self.manifest.get("notes", [])),
        )


# ---------------------------------------------------------------- loading
def _resolve(source: str | Path | None) -> Path:
    if source is None:
        return PACKS_DIR / DEFAULT_PACK
    p = Path(source)
    if not p.exists() and (PACKS_DIR / str(source)).is_dir():
        return PACKS_DIR / str(source)
    return p


def bundled_packs() -> list[str]:
    """Names of the packs shipped inside the package."""
    return sorted(p.name for p in PACKS_DIR.iterdir() if (p / MANIFEST).is_file()) if PACKS_DIR.is_dir() else []


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the pack at ``path`` (checked for format, version and file names, not yet
    for checksums)."""
    if not path.is_dir():
        raise AnchorPackError(f"anchor pack {str(path)!r} does not exist (bundled packs: {', '.join(bundled_packs()) or 'none'})")
    try:
        raw = read_file(path, MANIFEST, MAX_MANIFEST_BYTES, error=AnchorPackError)
    except AnchorPackError as exc:
        if "missing" in str(exc):
            raise AnchorPackError(f"{str(path)!r} is not an anchor pack: {MANIFEST} is missing") from None
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: {exc}") from None
    try:
        manifest = parse_json(raw, MANIFEST, AnchorPackError)
    except AnchorPackError as exc:
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: unreadable {MANIFEST} ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise AnchorPackError(f"{str(path)!r} is not an anchor pack (format field is not {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise AnchorPackError(f"anchor pack {str(path)!r} has format version {repr(manifest.get('version'))[:40]}; this library reads version {VERSION}")
    files, sums = manifest.get("files"), manifest.get("sha256")
    if not isinstance(files, dict) or not isinstance(sums, dict) or any(k not in files for k in REQUIRED_FILES):
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: its manifest lists no {', '.join(REQUIRED_FILES)} files")
    for name in files.values():  # plain names inside the pack only: no "../", no absolute path
        try:
            plain_name(name, AnchorPackError)
        except AnchorPackError as exc:
            raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: {exc}") from None
    dim = manifest.get("dim")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: dim must be an integer in [1, {MAX_DIM}], got {str(dim)[:40]}")
    models = manifest.get("models", [])
    if not isinstance(models, list) or not all(isinstance(c, dict) for c in models):
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: models must be a list of model cards")
    return manifest


def _read_verified(path: Path, manifest: dict[str, Any], key: str, limit: int | None = None) -> bytes:
    """One file of the pack, confined and bounded like a history store's, checksum verified in
    chunks before it is read into memory."""
    name = manifest["files"][key]
    if not isinstance(manifest["sha256"].get(key), str):
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: no checksum for {name}")
    limit = min(limit or MAX_FILE_BYTES, MAX_LICENSE_BYTES if key == "license" else MAX_FILE_BYTES)
    try:
        return read_file(path, name, limit, sha256=manifest["sha256"].get(key), error=AnchorPackError)
    except AnchorPackError as exc:
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: {exc}") from None


def _gunzip(data: bytes, name: str) -> bytes:
    """Decompress every gzip member of ``data``, refusing output above `MAX_QUESTIONS_BYTES`
    before it is allocated (a gzip bomb inflates 1,000x)."""
    out, total = [], 0
    while data:
        d = zlib.decompressobj(wbits=31)
        while not d.eof:
            chunk = d.decompress(data, _GUNZIP_CHUNK)  # at most one chunk of output per call
            total += len(chunk)
            if total > MAX_QUESTIONS_BYTES:
                raise AnchorPackError(f"anchor pack file {name} decompresses to more than {MAX_QUESTIONS_BYTES} bytes")
            out.append(chunk)
            data = d.unconsumed_tail
            if not chunk and not data:  # no input left and nothing more came out
                break
        if not d.eof:
            raise AnchorPackError(f"anchor pack file {name} is unreadable: truncated gzip data")
        data = d.unused_data.lstrip(b"\0")
    return b"".join(out)


def _questions(data: bytes, name: str) -> list[AnchorQuestion]:
    try:
        raw = _gunzip(data, name) if name.endswith(".gz") else data
        if len(raw) > MAX_QUESTIONS_BYTES:
            raise AnchorPackError(f"anchor pack file {name} is more than {MAX_QUESTIONS_BYTES} bytes")
        text = raw.decode("utf-8")
        rows = [json.loads(line) for line in text.split("\n") if line.strip()]
    except (zlib.error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise AnchorPackError(f"anchor pack file {name} is unreadable: {type(exc).__name__}: {str(exc)[:120]}") from None
    return [AnchorQuestion.from_json(i, row) for i, row in enumerate(rows)]


def _load(path: Path) -> AnchorPack:
    manifest = read_manifest(path)
    files = manifest["files"]
    questions = _questions(_read_verified(path, manifest, "questions"), files["questions"])
    n, m, dim = len(questions), len(manifest.get("models", [])), manifest["dim"]

    def array(key: str, shape: tuple[int, int]) -> np.ndarray:
        # a float array of this shape needs at most this many bytes: a bigger file is refused unread
        data = _read_verified(path, manifest, key, MAX_NPY_HEADER_BYTES + 16 + shape[0] * shape[1] * 8)
        return parse_npy(data, f"anchor pack {str(path)!r} file {files[key]}", "f", shape, AnchorPackError)

    emb = array("embeddings", (n, dim))
    scores = array("scores", (n, m))
    toks = array("output_tokens", (n, m)) if "output_tokens" in files else None
    if "license" in files:
        _read_verified(path, manifest, "license")
    try:
        return AnchorPack(manifest, questions, emb, scores, toks, path=path)
    except AnchorPackError:
        raise
    except ScopeError as exc:  # a malformed model card
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise AnchorPackError(f"anchor pack {str(path)!r} is corrupt: {type(exc).__name__}: {str(exc)[:160]}") from None


@lru_cache(maxsize=8)
def _load_cached(path: Path, stamp: tuple[tuple[str, int, int], ...]) -> AnchorPack:
    return _load(path)


def load_pack(source: str | Path | None = None) -> AnchorPack:
    """Load and verify an anchor pack: a bundled one by name (default ``llmrouter-9``) or a directory.

    Offline and quick (no embedder is loaded); every file's checksum is verified, and a missing,
    corrupt or foreign pack raises `AnchorPackError` naming the problem. A pack is read as untrusted
    input (it may come from a download): file names must be plain names inside the pack, no symlink
    is followed, only regular files are read (never blocking on a FIFO), every size is bounded
    before anything is allocated (files, the decompressed questions, npy headers, which must match
    the data exactly), and each checksum is checked before its file is used. Loaded packs are
    cached per path until the manifest changes.
    """
    path = _resolve(source).resolve()
    if not (path / MANIFEST).is_file():
        read_manifest(path)  # raises the precise error
    stamp = tuple(sorted((p.name, st.st_mtime_ns, st.st_size) for p in path.iterdir()
                         if stat.S_ISREG((st := p.lstat()).st_mode)))
    return _load_cached(path, stamp)
