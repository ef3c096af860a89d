"""Reading the knob and the ledger for one call out of LangChain's config (or an agent's context).

Keys (in ``RunnableConfig["configurable"]``, or on an agent run's ``context``):

- one knob: ``max_cost`` (USD per call), ``tradeoff`` (λ), ``min_accuracy`` (0..1) or ``alpha`` (0..1);
- ``scope_ledger``: a `scope_shared.Ledger` every routed step of the run draws from.

A value set for the call wins over the router's own fields, which win over the core router's
default knob. ``chain.with_config(configurable={...})`` therefore changes the budget of one chain
without rebuilding anything, and two chains sharing one router keep separate ledgers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scope_shared.budget.ledger import Ledger
from scope_shared.budget.nesting import check_ledger
from scope_shared.routing.knobs import KNOB_KINDS, Knob, knob_from_mapping, resolve_knob

LEDGER_KEY = "scope_ledger"
KEYS: tuple[str, ...] = (*KNOB_KINDS, LEDGER_KEY)

@dataclass(frozen=True)
class CallSettings:
    """What governs one routed call: the knob (None = the core router's default) and the ledger."""

    knob: Knob | None
    ledger: Ledger | None


def as_mapping(obj: Any) -> dict[str, Any]:
    """The SCOPE keys of a dict, dataclass or pydantic object (an agent's ``context``)."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return {k: obj[k] for k in KEYS if obj.get(k) is not None}
    return {k: getattr(obj, k) for k in KEYS if getattr(obj, k, None) is not None}


def resolve(
    *layers: Mapping[str, Any] | None,
    default_knob: Knob | None = None,
    default_ledger: Ledger | None = None,
) -> CallSettings:
    """The settings for one call: the first layer that sets a knob (or ledger) wins."""
    knob: Knob | None = None
    ledger: Ledger | None = None
    for layer in layers:
        if not layer:
            continue
        if knob is None:
            knob = knob_from_mapping(layer)
        if ledger is None and layer.get(LEDGER_KEY) is not None:
            ledger = check_ledger(layer[LEDGER_KEY], repr(LEDGER_KEY))
    return CallSettings(knob=knob or default_knob, ledger=ledger or default_ledger)


def field_knob(**fields: float | None) -> Knob | None:
    """The knob set on a router's own fields (at most one), else None."""
    return resolve_knob(None, **fields)
