"""Validation of query text at the library's boundary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scope_shared.errors import InvalidQueryError

MAX_QUERY_CHARS = 2_000_000


def validate_query(query: Any) -> str:
    """Return the query if it is a non-empty string, else raise `InvalidQueryError`."""
    if not isinstance(query, str):
        raise InvalidQueryError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidQueryError("query is empty or whitespace only")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidQueryError(f"query is {len(query)} characters, above the {MAX_QUERY_CHARS} limit")
    return query


def validate_queries(queries: Any) -> list[str]:
    """Validate a batch of queries; the error names the first bad position."""
    if isinstance(queries, str) or not isinstance(queries, Sequence):
        raise InvalidQueryError("queries must be a sequence of strings")
    out = []
    for i, q in enumerate(queries):
        try:
            out.append(validate_query(q))
        except InvalidQueryError as exc:
            raise InvalidQueryError(f"query #{i}: {exc}") from None
    return out
