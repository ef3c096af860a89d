"""Validation of text at the library's boundary: queries, history questions, names.

Text is checked at the door, before anything is embedded, recorded or stored:

- it must encode as UTF-8: a lone surrogate (``"\\ud800"``, easy to get from JSON) would be routed,
  recorded, and then make every later save of the history fail;
- it must hold something visible: whitespace and invisible format characters (zero-width space,
  joiners, BOM, soft hyphen: Unicode categories Cf, Cc, Zs, Zl, Zp) alone are an empty query.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from scope_shared.errors import HistoryDataError, InvalidQueryError, ScopeError

MAX_QUERY_CHARS = 2_000_000
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    """True if ``text`` holds only whitespace and invisible format characters."""
    for ch in text:
        if not ch.isspace() and unicodedata.category(ch) not in _INVISIBLE:
            return False
    return True


def unencodable_at(text: str) -> int | None:
    """Position of the first character that cannot be encoded as UTF-8 (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_text(text: Any, what: str, error: type[ScopeError] = HistoryDataError, max_chars: int | None = None) -> str:
    """Return ``text`` if it is a non-blank, UTF-8 encodable string, else raise ``error`` naming ``what``
    (by default `HistoryDataError`: most texts checked here are a history's questions and names)."""
    if not isinstance(text, str):
        raise error(f"{what} must be a string, got {type(text).__name__}")
    if max_chars is not None and len(text) > max_chars:
        raise error(f"{what} is {len(text)} characters, above the {max_chars} limit")
    bad = unencodable_at(text)
    if bad is not None:
        raise error(f"{what} cannot be encoded as UTF-8 (lone surrogate {text[bad]!r} at position {bad})")
    if is_blank(text):
        raise error(f"{what} is empty, whitespace or invisible characters only")
    return text


def validate_query(query: Any) -> str:
    """Return the query if it is a non-empty, encodable string, else raise `InvalidQueryError`."""
    return check_text(query, "query", InvalidQueryError, MAX_QUERY_CHARS)


def validate_queries(queries: Any) -> list[str]:
    """Validate a batch of queries; the error names the first bad position."""
    if isinstance(queries, (str, bytes, Mapping)) or not isinstance(queries, Iterable):
        raise InvalidQueryError("queries must be a list of strings")
    out = []
    for i, q in enumerate(queries):
        try:
            out.append(validate_query(q))
        except InvalidQueryError as exc:
            raise InvalidQueryError(f"query #{i}: {exc}") from None
    return out
