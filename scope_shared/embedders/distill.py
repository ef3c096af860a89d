"""Distil a static embedding model from a sentence-transformers teacher, offline.

The recipe is model2vec's (Minish Lab, MIT): every token of the teacher's vocabulary is run through
the teacher alone (``[CLS] token [SEP]``, mean-pooled like the teacher's sentence embedding); the
vectors are reduced by PCA and weighted by a SIF weight from the token's frequency rank (Zipf), so
frequent tokens count less. A sentence is then the mean of its tokens' rows: no network at query time.

It is written here (numpy + the teacher's transformers/tokenizers) rather than called from
``model2vec.distill`` because that extra pins ``transformers<5.4`` and pulls ``skeletoken``; the output
folder uses model2vec's layout (``model.safetensors`` with ``embeddings``, ``tokenizer.json``,
``config.json``), so ``model2vec.StaticModel.from_pretrained(folder)`` can read it too.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scope_shared.progress import quiet_third_party, show_bars
from scope_shared.atomic import fsync_dir
from scope_shared.errors import EmbedderError

#: files of a built static model; ``scope_embedder.json`` records how it was built
MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE, BUILD_FILE = "model.safetensors", "tokenizer.json", "config.json", "scope_embedder.json"
_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class DistillConfig:
    """How a static model is distilled. ``vocab_size`` keeps only the first (most frequent) tokens
    (``None``: the teacher's whole vocabulary); tests use a small one to build in seconds."""

    pca_dims: int = 256
    sif_coefficient: float = 1e-4
    vocab_size: int | None = None
    batch_size: int = 512

    def __post_init__(self) -> None:
        if self.pca_dims < 1:
            raise EmbedderError(f"pca_dims must be positive, got {self.pca_dims}")
        if not 0 < self.sif_coefficient < 1:
            raise EmbedderError(f"sif_coefficient must be in (0, 1), got {self.sif_coefficient}")
        if self.vocab_size is not None and self.vocab_size < 2 * self.pca_dims:
            raise EmbedderError(f"vocab_size must be at least 2 x pca_dims ({2 * self.pca_dims}), got {self.vocab_size}")


def kept_vocabulary(vocab: dict[str, int], vocab_size: int | None) -> list[str]:
    """Teacher tokens in id order (≈ frequency rank for BERT WordPiece), without ``[unused*]`` and
    special tokens; ``[PAD]`` and ``[UNK]`` first, as the tokenizer needs them."""
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    words = [t for t in tokens if t not in _SPECIAL and not (t.startswith("[unused") and t.endswith("]"))]
    if vocab_size is not None:
        words = words[:vocab_size]
    return ["[PAD]", "[UNK]", *words]


def static_tokenizer_json(teacher_tokenizer: dict[str, Any], tokens: list[str]) -> dict[str, Any]:
    """The teacher's tokenizer over ``tokens`` only: no [CLS]/[SEP] added, no truncation or padding."""
    tok = json.loads(json.dumps(teacher_tokenizer))
    tok["model"]["vocab"] = {t: i for i, t in enumerate(tokens)}
    tok["model"]["unk_token"] = "[UNK]"
    tok["added_tokens"] = [a | {"id": tokens.index(a["content"])} for a in tok.get("added_tokens", []) if a["content"] in tokens]
    tok["post_processor"] = None
    tok["truncation"] = None
    tok["padding"] = None
    return tok


def token_vectors(model: Any, ids: list[int], cls_id: int, sep_id: int, batch_size: int, show_progress: bool) -> np.ndarray:
    """Teacher output for each token alone: mean of the hidden states of ``[CLS] token [SEP]``."""
    import torch
    from tqdm.auto import tqdm

    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    starts = range(0, len(ids), batch_size)
    with torch.inference_mode():
        for s in tqdm(starts, desc="distilling token vectors", disable=not show_bars(show_progress)):
            chunk = torch.tensor(ids[s : s + batch_size], dtype=torch.long)[:, None]
            inputs = torch.cat([torch.full_like(chunk, cls_id), chunk, torch.full_like(chunk, sep_id)], dim=1)
            hidden = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
            out[s : s + len(chunk)] = hidden.mean(dim=1).float().numpy()
    return out


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Centre and project onto the top ``dims`` principal axes (signs fixed for reproducibility)."""
    xc = x - x.mean(axis=0)
    vals, vecs = np.linalg.eigh((xc.T @ xc) / (len(x) - 1))
    axes = vecs[:, ::-1][:, : min(dims, x.shape[1])]
    scores = xc @ axes
    signs = np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(scores.shape[1])])
    return (scores * np.where(signs == 0, 1, signs)).astype(np.float32)


def sif_weights(n: int, coefficient: float) -> np.ndarray:
    """SIF weight a / (a + p(rank)) with Zipf frequencies p ∝ 1 / rank (model2vec's weighting)."""
    inv_rank = 1.0 / np.arange(2, n + 2)
    return coefficient / (coefficient + inv_rank / inv_rank.sum())


def distill_static(teacher: str | Path, out: str | Path, config: DistillConfig | None = None,
                   show_progress: bool = True, replace: bool = False) -> Path:
    """Distil ``teacher`` (a local sentence-transformers / BERT folder) into a static model at ``out``.

    The folder appears atomically (built beside it, then renamed). A complete folder already at
    ``out`` (another process finished first) is kept, unless ``replace``. Returns ``out``.
    """
    from transformers import AutoModel

    from scope_shared.embedders.minilm import default_model_path, verify_bundled_weights

    cfg = config or DistillConfig()
    teacher, out = Path(teacher), Path(out)
    if str(teacher) == default_model_path():
        verify_bundled_weights(str(teacher))
    try:
        teacher_tok = json.loads((teacher / TOKENIZER_FILE).read_text(encoding="utf-8"))
        vocab = teacher_tok["model"]["vocab"]
        with quiet_third_party():
            model = AutoModel.from_pretrained(str(teacher), local_files_only=True).eval()
    except (OSError, ValueError, KeyError) as exc:
        raise EmbedderError(f"cannot read the teacher model at {str(teacher)!r}: {exc}") from exc
    tokens = kept_vocabulary(vocab, cfg.vocab_size)
    vecs = token_vectors(model, [vocab[t] for t in tokens[1:]], vocab["[CLS]"], vocab["[SEP]"], cfg.batch_size, show_progress)
    table = static_table(vecs, cfg)
    build = {"teacher": str(teacher), "teacher_vocab": len(vocab), "tokens": len(tokens), **asdict(cfg)}
    return write_static_model(out, table, static_tokenizer_json(teacher_tok, tokens), teacher.name, build, replace)


def static_table(token_vecs: np.ndarray, cfg: DistillConfig) -> np.ndarray:
    """Rows of the static model from the teacher's vectors of ``[UNK]`` and then every word, in
    vocabulary order: PCA, SIF weights by rank (``[UNK]`` weighs as a rare token), a zero row first
    for ``[PAD]``. The ``[UNK]`` row embeds texts with no known token (so none is the zero vector)."""
    vecs = pca(token_vecs, cfg.pca_dims)
    weights = np.concatenate([[1.0], sif_weights(len(token_vecs) - 1, cfg.sif_coefficient)])
    return np.concatenate([np.zeros((1, vecs.shape[1]), np.float32), vecs * weights[:, None].astype(np.float32)])


def write_static_model(out: Path, table: np.ndarray, tokenizer: dict[str, Any], teacher_name: str,
                       build: dict[str, Any], replace: bool = False) -> Path:
    """Write the model2vec-layout folder atomically (built beside ``out``, then renamed into place);
    a complete folder already there is kept unless ``replace`` (an incomplete one is replaced)."""
    from safetensors.numpy import save_file

    model2vec_config = {
        "model_type": "model2vec", "architectures": ["StaticModel"], "tokenizer_name": teacher_name,
        "apply_pca": build.get("pca_dims"), "sif_coefficient": build.get("sif_coefficient"),
        "hidden_dim": int(table.shape[1]), "seq_length": 1000000, "normalize": True, "pooling": "mean",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_file({"embeddings": table.astype(np.float16)}, str(tmp / MODEL_FILE))
        (tmp / TOKENIZER_FILE).write_text(json.dumps(tokenizer), encoding="utf-8")
        (tmp / CONFIG_FILE).write_text(json.dumps(model2vec_config, indent=2), encoding="utf-8")
        (tmp / BUILD_FILE).write_text(json.dumps(build, indent=2), encoding="utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        tmp.chmod(0o755)
        if out.exists():
            if (out / BUILD_FILE).is_file() and not replace:
                return out  # another builder finished first: keep its folder
            shutil.rmtree(out)
        os.rename(tmp, out)
        fsync_dir(out.parent)
    except OSError:
        if not (out / BUILD_FILE).is_file():  # lost a race to another builder: keep its folder
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
