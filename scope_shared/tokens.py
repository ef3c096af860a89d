"""Counting input tokens, needed to price a call before it is made."""

from __future__ import annotations

import math
from collections.abc import Callable

TokenCounter = Callable[[str], int]


def approx_token_count(text: str) -> int:
    """About four characters per token: the usual rule for English text with BPE tokenizers."""
    return max(1, math.ceil(len(text) / 4))


def hf_token_counter(tokenizer) -> TokenCounter:  # type: ignore[no-untyped-def]
    """Wrap a Hugging Face tokenizer as a token counter."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count
