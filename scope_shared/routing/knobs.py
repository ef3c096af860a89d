"""The one knob a user turns at run time, validated."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from scope_shared.errors import InvalidKnobError

KnobKind = Literal["max_cost", "tradeoff", "min_accuracy", "alpha"]
KNOB_KINDS: tuple[str, ...] = ("max_cost", "tradeoff", "min_accuracy", "alpha")


class Knob(BaseModel):
    """A routing knob.

    - ``max_cost``: the most (USD) this call may cost; also capped by what is left of a ledger.
      The most accurate candidate that fits wins.
    - ``tradeoff`` (λ >= 0, accuracy per USD): maximise ``p_correct - λ * expected_cost``;
      λ = 0 is "most accurate", large λ is "cheapest".
    - ``min_accuracy`` (0..1): the cheapest candidate whose ``p_correct`` reaches it, else the most accurate.
    - ``alpha`` (0..1): the SCOPE paper's scorer, 0 = cheapest, 1 = most accurate.
    """

    model_config = ConfigDict(frozen=True)

    kind: KnobKind
    value: float

    def as_dict(self) -> dict[str, float]:
        return {self.kind: self.value}

    def __str__(self) -> str:
        return f"{self.kind}={self.value:g}"


def make_knob(kind: str, value: Any) -> Knob:
    """Validate one knob setting; raise `InvalidKnobError` naming the problem."""
    if kind not in KNOB_KINDS:
        raise InvalidKnobError(f"unknown knob {kind!r}; use one of {', '.join(KNOB_KINDS)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidKnobError(f"knob {kind} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidKnobError(f"knob {kind} must be finite, got {value!r}")
    if v < 0:
        raise InvalidKnobError(f"knob {kind} must be >= 0, got {v:g}")
    if kind in ("min_accuracy", "alpha") and v > 1:
        raise InvalidKnobError(f"knob {kind} must be in [0, 1], got {v:g}")
    return Knob(kind=kind, value=v)  # type: ignore[arg-type]


def resolve_knob(default: Knob | None, **settings: Any) -> Knob | None:
    """Pick the knob for one call: the one given (at most one), else the default."""
    given = {k: v for k, v in settings.items() if v is not None}
    if len(given) > 1:
        raise InvalidKnobError(f"set one knob at a time, got {', '.join(sorted(given))}")
    if given:
        ((kind, value),) = given.items()
        return make_knob(kind, value)
    return default


def knob_from_mapping(mapping: Mapping[str, Any] | None) -> Knob | None:
    """Read a knob out of a config mapping such as LangChain's ``configurable`` (other keys ignored)."""
    if not mapping:
        return None
    return resolve_knob(None, **{k: mapping.get(k) for k in KNOB_KINDS})
