"""Checks that the candidates and the router's cards describe the same models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_scope.candidates import check_candidate
from scope_shared.errors import InvalidCardError, InvalidComponentError, NoCandidatesError
from scope_shared.routing.router import Router


def check_pairing(candidates: Mapping[str, Any] | None, router: Router | None) -> None:
    """Raise a clear `ScopeError` unless every candidate has a card and every card a candidate."""
    if not candidates:
        raise NoCandidatesError("candidates is empty: give at least one chat model, by card name")
    if not isinstance(candidates, Mapping):
        raise InvalidComponentError(f"candidates must be a dict of name -> chat model, got {type(candidates).__name__}")
    for name, candidate in candidates.items():
        check_candidate(name, candidate)
    if router is None:
        raise InvalidComponentError("no router: pass router=Router(...) or cards= and history=")
    if not isinstance(router, Router):
        raise InvalidComponentError(f"router must be a scope_shared.Router, got {type(router).__name__}")
    no_card = [n for n in candidates if n not in router.cards]
    if no_card:
        raise InvalidCardError(
            f"candidate(s) {', '.join(map(repr, no_card))} have no model card; cards exist for "
            f"{', '.join(router.cards)} (add the model with Router.add_model)"
        )
    no_model = [n for n in router.cards if n not in candidates]
    if no_model:
        raise InvalidCardError(
            f"card(s) {', '.join(map(repr, no_model))} have no candidate chat model; the router "
            "could pick a model it cannot call (add it to candidates or drop its card)"
        )
