"""A static embedder: tokenize, average the tokens' rows of a table, normalise. About a millisecond a
query on one CPU thread, with no network at query time.

Reads a folder in model2vec's layout (``model.safetensors`` holding ``embeddings``, ``tokenizer.json``,
``config.json``), such as one built by `scope_shared.embedders.distill.distill_static`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scope_shared.embedders.base import Embedder
from scope_shared.embedders.distill import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE
from scope_shared.errors import EmbedderError


@dataclass(frozen=True)
class Truncation:
    """Which tokens of a long text are embedded: the first ``head`` and the last ``tail`` (a text of
    at most ``head + tail`` tokens is kept whole). ``None`` for both keeps every token."""

    head: int | None = None
    tail: int | None = None

    def __post_init__(self) -> None:
        for side in (self.head, self.tail):
            if side is not None and side < 0:
                raise EmbedderError(f"truncation lengths must be >= 0, got head={self.head}, tail={self.tail}")
        if self.head == 0 and self.tail == 0:
            raise EmbedderError("truncation would keep no token (head=0, tail=0)")

    @property
    def keeps_all(self) -> bool:
        return self.head is None and self.tail is None

    def apply(self, ids: list[int]) -> list[int]:
        if self.keeps_all or len(ids) <= (self.head or 0) + (self.tail or 0):
            return ids
        head = ids[: self.head or 0]
        tail = ids[len(ids) - self.tail :] if self.tail else []
        return head + tail

    @property
    def label(self) -> str:
        """Short form used in embedder names: ``""``, ``"head128"``, ``"tail256"``, ``"head32+tail224"``."""
        parts = [f"{k}{v}" for k, v in (("head", self.head), ("tail", self.tail)) if v]
        return "+".join(parts)


class StaticEmbedder(Embedder):
    """Mean of static token vectors (model2vec layout), optionally over a truncated token sequence.

    Args:
        path: folder with ``model.safetensors``, ``tokenizer.json`` and ``config.json``.
        name: the name histories record (default: the folder name plus the truncation label); two
            embedders with the same name must give the same vectors.
        truncation: which tokens of long texts to keep (default: all).
    """

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        truncation: Truncation | None = None,
        cache_size: int = 100_000,
    ) -> None:
        super().__init__(cache_size)
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = Path(path)
        try:
            table = load_file(str(path / MODEL_FILE))["embeddings"]
            self._tokenizer = Tokenizer.from_file(str(path / TOKENIZER_FILE))
            config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        except Exception as exc:  # noqa: BLE001 - file, key and tokenizers errors (plain Exception) alike
            raise EmbedderError(f"cannot load a static embedding model from {str(path)!r}: {exc}") from exc
        if table.ndim != 2 or table.shape[0] != self._tokenizer.get_vocab_size() or not np.all(np.isfinite(table)):
            raise EmbedderError(
                f"static model at {str(path)!r} is inconsistent: table {table.shape}, "
                f"tokenizer vocabulary {self._tokenizer.get_vocab_size()}"
            )
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._table = table.astype(np.float32)
        specials = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<unk>", "<pad>")  # carry no meaning
        self._drop = frozenset(i for t in specials if (i := self._tokenizer.token_to_id(t)) is not None)
        unk = self._tokenizer.token_to_id("[UNK]")
        #: the row for a text with no known token (the zero vector in folders without an [UNK] row)
        self._unknown = table[unk].astype(np.float32) if unk is not None else np.zeros(table.shape[1], np.float32)
        self.path = path
        self.config = config
        self.truncation = truncation or Truncation()
        label = self.truncation.label
        self.name = name or (path.name + (f"+{label}" if label else ""))

    @property
    def dim(self) -> int:
        return int(self._table.shape[1])

    @property
    def table(self) -> np.ndarray:
        """The (vocabulary, dim) float32 token table (read it, do not change it)."""
        return self._table

    @property
    def unknown_id(self) -> int | None:
        """Row read for a text with no known token (``[UNK]``), if the vocabulary has one."""
        return self._tokenizer.token_to_id("[UNK]")

    def token_ids(self, text: str) -> list[int]:
        """The kept token ids of a text (special tokens dropped, then truncated)."""
        return self._kept(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def token_ids_batch(self, texts: list[str]) -> list[list[int]]:
        """`token_ids` of many texts (tokenized in parallel)."""
        return [self._kept(enc.ids) for enc in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def _kept(self, ids: list[int]) -> list[int]:
        return self.truncation.apply([i for i in ids if i not in self._drop])

    def _embed(self, texts: list[str], show_progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 1:  # one query: skip encode_batch's thread-pool hand-off
            encodings = [self._tokenizer.encode(texts[0], add_special_tokens=False)]
        else:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        for row, enc in enumerate(encodings):
            ids = self._kept(enc.ids)
            out[row] = self._table[ids].mean(axis=0) if ids else self._unknown
        return out
