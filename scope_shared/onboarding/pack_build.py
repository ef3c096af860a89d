"""Building anchor packs: from the llmrouter-9 data, or from your own labelled questions.

`write_pack` writes the format described in `scope_shared.onboarding.pack` (and docs/anchor-pack.md):
every data file first, then the manifest with their checksums, each atomically, so an interrupted
build never leaves a pack that loads. `build_pack` embeds the questions (disk-cached) and joins the
known models' outcomes from a `RoutingTable`; `llmrouter9_questions` turns LLMRouter's query files
into `AnchorQuestion`s (reference answers reduced to the final answer the graders compare).
Used by ``scope pack build``.
"""

from __future__ import annotations

import ast
from dataclasses import replace
import gzip
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.atomic import atomic_write, atomic_write_json
from scope_shared.cards import ModelCard
from scope_shared.data.table import RoutingTable
from scope_shared.embedders import Embedder, as_embedder, embed_with_cache
from scope_shared.errors import AnchorPackError
from scope_shared.onboarding.graders.math_answers import final_boxed, gsm8k_reference
from scope_shared.onboarding.pack import FORMAT, MANIFEST, VERSION, sha256_bytes
from scope_shared.onboarding.questions import AnchorQuestion, Choices


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def write_pack(
    out: str | Path,
    questions: Sequence[AnchorQuestion],
    embeddings: np.ndarray,
    cards: Sequence[ModelCard] = (),
    scores: np.ndarray | None = None,
    output_tokens: np.ndarray | None = None,
    *,
    name: str,
    embedder_name: str | None,
    source: str | None = None,
    license_file: str | Path | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write a pack directory; returns its path. ``scores`` / ``output_tokens``: (questions, cards)."""
    out = Path(out)
    n, m = len(questions), len(cards)
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != n:
        raise AnchorPackError(f"embeddings of shape {emb.shape} for {n} questions")
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    scores = np.full((n, m), np.nan, np.float32) if scores is None else np.asarray(scores, np.float32)
    if scores.shape != (n, m):
        raise AnchorPackError(f"scores of shape {scores.shape}, expected ({n}, {m})")
    if [q.id for q in questions] != list(range(n)):
        raise AnchorPackError("question ids must be 0..n-1 in order")
    lines = "".join(json.dumps(q.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for q in questions)
    blobs = {
        "questions": ("questions.jsonl.gz", gzip.compress(lines.encode("utf-8"), compresslevel=9, mtime=0)),
        "embeddings": ("embeddings.npy", _npy_bytes(emb.astype(np.float16))),
        "scores": ("scores.npy", _npy_bytes(scores)),
    }
    if output_tokens is not None:
        toks = np.asarray(output_tokens, np.float32)
        if toks.shape != (n, m):
            raise AnchorPackError(f"output_tokens of shape {toks.shape}, expected ({n}, {m})")
        blobs["output_tokens"] = ("output_tokens.npy", _npy_bytes(toks))
    if license_file is not None:
        blobs["license"] = ("LICENSE", Path(license_file).read_bytes())
    out.mkdir(parents=True, exist_ok=True)
    for fname, data in blobs.values():
        atomic_write(out / fname, lambda f, d=data: f.write(d))
        (out / fname).chmod(0o644)  # package data: readable by every user of an installed copy
    atomic_write_json(out / MANIFEST, {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "source": source,
        "embedder": embedder_name,
        "dim": int(emb.shape[1]),
        "n_questions": n,
        "models": [c.model_dump(exclude_none=True) for c in cards],
        "notes": list(notes),
        "files": {k: fname for k, (fname, _) in blobs.items()},
        "sha256": {k: sha256_bytes(data) for k, (_, data) in blobs.items()},
    })
    (out / MANIFEST).chmod(0o644)
    return out


def build_pack(
    out: str | Path,
    questions: Sequence[AnchorQuestion],
    table: RoutingTable | None = None,
    embedder: Embedder | Any = None,
    *,
    name: str,
    source: str | None = None,
    license_file: str | Path | None = None,
    show_progress: bool = True,
) -> Path:
    """Embed ``questions`` and write a pack with the outcomes ``table`` knows for them (by text)."""
    emb = as_embedder(embedder)
    texts = [q.text for q in questions]
    vecs = embed_with_cache(emb, texts, show_progress=show_progress)
    cards: list[ModelCard] = []
    scores = toks = None
    notes: list[str] = []
    if table is not None:
        row = {t: i for i, t in enumerate(table.questions)}
        known = set(texts)
        missing = [t for t in table.questions if t not in known]
        if missing:
            raise AnchorPackError(f"{len(missing)} question(s) of the routing table have no entry in the questions file, e.g. {missing[0][:80]!r}")
        idx = np.array([row.get(t, -1) for t in texts])
        have = idx >= 0
        cards = [table.cards[m] for m in table.models]
        scores = np.full((len(texts), len(cards)), np.nan)
        scores[have] = table.scores[idx[have]]
        if table.output_tokens is not None:
            toks = np.full_like(scores, np.nan)
            toks[have] = table.output_tokens[idx[have]]
        notes = list(table.notes)
    return write_pack(out, questions, vecs, cards, scores, toks, name=name, embedder_name=emb.name,
                      source=source, license_file=license_file, notes=notes)


def read_questions_file(path: str | Path) -> list[AnchorQuestion]:
    """Your labelled questions: JSONL, one pack question per line (see docs/anchor-pack.md)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise AnchorPackError(f"cannot read questions file {str(path)!r}: {exc}") from None
    rows = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise AnchorPackError(f"{path.name}:{n}: not valid JSON ({exc})") from None
    qs = [AnchorQuestion.from_json(i, r) for i, r in enumerate(rows)]
    if len({q.text for q in qs}) != len(qs):
        raise AnchorPackError(f"{path.name}: question texts must be unique")
    return qs


# ---------------------------------------------------------------- llmrouter-9
_MC_LABELS = ("label", "labels")


def _mc_choices(raw: Any) -> Choices:
    val = ast.literal_eval(raw) if isinstance(raw, str) else raw
    if isinstance(val, dict):
        labels = next(val[k] for k in _MC_LABELS if k in val)
        return Choices(tuple(map(str, labels)), tuple(map(str, val["text"])))
    return Choices.from_texts([str(v) for v in val])


def _last_function(stub: str) -> str | None:
    try:
        tree = ast.parse(stub)
    except SyntaxError:
        return None
    defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return defs[-1] if defs else None


def llmrouter9_question(qid: int, text: str, row: dict[str, Any]) -> AnchorQuestion:
    """One LLMRouter query row as an `AnchorQuestion` (reference reduced to the final answer)."""
    metric, gt = row["metric"], row["ground_truth"]
    common = {"id": qid, "text": text, "benchmark": row["task_name"]}
    if metric == "em_mc":
        return AnchorQuestion(**common, metric="multiple_choice", reference=str(gt).strip(), choices=_mc_choices(row["choices"]))
    if metric == "GSM8K":
        return AnchorQuestion(**common, metric="final_number", reference=gsm8k_reference(gt))
    if metric == "MATH":
        return AnchorQuestion(**common, metric="math", reference=final_boxed(gt) or str(gt).strip())
    if metric == "code_eval":
        if row["task_name"] == "human_eval":
            entry = _last_function(text)
            if entry is None:
                raise AnchorPackError(f"human_eval question #{qid}: no function to complete in its prompt")
            return AnchorQuestion(**common, metric="code", tests=f"{gt.rstrip()}\n\ncheck({entry})\n", entry_point=entry)
        asserts = ast.literal_eval(gt)
        match = re.match(r"\s*assert\s+(?:not\s+)?\(?\s*(?:set\()?\s*(\w+)\s*\(", asserts[0])
        return AnchorQuestion(**common, metric="code", tests="\n".join(asserts) + "\n", entry_point=match.group(1) if match else None)
    if metric == "commongen_coverage":
        return AnchorQuestion(**common, metric="concept_coverage", reference=str(gt).strip())
    if metric == "f1_score":
        return AnchorQuestion(**common, metric="f1", reference=str(gt).strip())
    raise AnchorPackError(f"llmrouter-9 question #{qid}: unknown metric {metric!r}")


def llmrouter9_questions(root: str | Path, table: RoutingTable) -> list[AnchorQuestion]:
    """The questions of ``table`` (llmrouter-9, deduplicated) with their references from queries_*.jsonl."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name in ("queries_train.jsonl", "queries_test.jsonl"):
        for line in (Path(root) / name).read_text(encoding="utf-8").split("\n"):
            if line.strip():
                r = json.loads(line)
                rows.setdefault((r["query"].strip(), r["task_name"]), r)
    return [llmrouter9_question(i, t, rows[(t, b)]) for i, (t, b) in enumerate(zip(table.questions, table.benchmarks))]


def build_llmrouter9_pack(root: str | Path, out: str | Path, embedder: Embedder | Any = None, show_progress: bool = True) -> Path:
    """The bundled pack: llmrouter-9 pooled and deduplicated (as `load_llmrouter9`), MIT licence."""
    from scope_shared.data.llmrouter import load_llmrouter9

    root = Path(root)
    from scope_shared.onboarding.length_priors import NOTE, with_length_priors

    table = load_llmrouter9(root)
    table = replace(table, cards=with_length_priors(table.cards), notes=[NOTE])
    questions = llmrouter9_questions(root, table)
    return build_pack(out, questions, table, embedder, name="llmrouter-9", license_file=root / "LICENSE",
                      source="ulab-uiuc/LLMRouter (MIT), snapshot 4e7a796942ce26e9d5f2b93191c7c2585c99c2e3; "
                             "train and test files pooled, identical question texts merged",
                      show_progress=show_progress)
