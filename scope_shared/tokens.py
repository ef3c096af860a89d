"""Token counts: counted locally (to price a call before it is made) or as a provider reported them.

`reported_tokens` is the one reader of provider usage records, shared by the LangChain and
LlamaIndex integrations and the onboarding clients, so every path settles from the same fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

TokenCounter = Callable[[str], int]

#: (input, output) field names of a usage record: LangChain / Anthropic, then OpenAI
USAGE_FIELDS = (("input_tokens", "output_tokens"), ("prompt_tokens", "completion_tokens"))
#: where a record may sit inside a larger object (``raw.usage``, ``response_metadata["token_usage"]``)
USAGE_MEMBERS = ("usage", "token_usage")


def approx_token_count(text: str) -> int:
    """About four characters per token: the usual rule for English text with BPE tokenizers."""
    return max(1, math.ceil(len(text) / 4))


def member(obj: Any, key: str) -> Any:
    """``obj[key]`` for a mapping, else ``obj.key``; None when absent (providers use both shapes)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def token_pair(record: Any) -> tuple[float, float] | None:
    """(input, output) tokens of one usage record (a mapping or an object), or None.

    Both counts must be numbers under one spelling (`USAGE_FIELDS`): a record with only one of them
    says too little to settle a call on, so the caller counts instead.
    """
    for inp, out in USAGE_FIELDS:
        i, o = member(record, inp), member(record, out)
        if _is_count(i) and _is_count(o):
            return float(i), float(o)
    return None


def reported_tokens(*sources: Any) -> tuple[float, float] | None:
    """The first usage record found among ``sources``, each looked at itself and then at its
    ``usage`` / ``token_usage`` member (`USAGE_MEMBERS`); None when no source reports usage."""
    for source in sources:
        if source is None:
            continue
        for record in (source, *(member(source, k) for k in USAGE_MEMBERS)):
            pair = token_pair(record) if record is not None else None
            if pair is not None:
                return pair
    return None
