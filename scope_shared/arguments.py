"""Keyword checks for the integrations' constructors: a misspelt keyword fails loudly.

Framework base classes (pydantic models of LangChain and LlamaIndex) silently drop keywords they
do not know, so ``SCOPERouter(..., min_acuracy=0.5)`` would run under the default knob. Each
component checks its keywords here, once, at construction.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from scope_shared.errors import UnknownArgumentError


def check_keywords(given: Iterable[str], valid: Iterable[str], owner: str) -> None:
    """Raise `UnknownArgumentError` for the first of ``given`` not in ``valid``, naming the closest
    valid keyword (or listing them when none is close)."""
    names = sorted(set(valid))
    for key in given:
        if key in names:
            continue
        close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keywords: {', '.join(names)}"
        raise UnknownArgumentError(f"{owner} got an unknown keyword {key!r}; {hint}")
