"""The one knob a user turns at run time, validated once where it enters (`as_knob`, `knob_in`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict

from scope_shared.errors import InvalidKnobError

KnobKind = Literal["max_cost", "tradeoff", "min_accuracy", "accuracy_margin", "alpha"]
KNOB_KINDS: tuple[str, ...] = ("max_cost", "tradeoff", "min_accuracy", "accuracy_margin", "alpha")
#: kinds whose value is a share in [0, 1]
_UNIT_KINDS = frozenset({"min_accuracy", "accuracy_margin", "alpha"})
#: the fixed ``accuracy_margin`` of the default knob, where a router cannot calibrate one on its history
#: (`scope_shared.routing.margin_calibration`) and for queries far from it: the candidate predicted most
#: accurate on the query, the cheaper on ties. Chosen on validation parts only by a rule fixed beforehand
#: (``benchmarks/default_margin.py``, llmrouter-9 and routerbench-11, 5 seeds: the largest margin keeping
#: the default within 1 point of the best single model's accuracy with all models seen and with three
#: onboarded held-out trios); on routerbench-11, strong models close in accuracy, even 0.01 gives up more
#: than a point with an onboarded trio.
DEFAULT_ACCURACY_MARGIN = 0.0


class Knob(BaseModel):
    """A routing knob (build one with `make_knob` or `as_knob`: they validate it).

    - ``max_cost``: the most (USD) this call may cost; also capped by what is left of a ledger.
      The most accurate candidate that fits wins.
    - ``tradeoff`` (λ >= 0, accuracy per USD): maximise ``p_correct - λ * expected_cost``;
      λ = 0 is "most accurate", large λ is "cheapest".
    - ``min_accuracy`` (0..1): the cheapest candidate whose ``p_correct`` reaches it, else the most accurate.
    - ``accuracy_margin`` (m in 0..1, the default): the cheapest candidate whose ``p_correct`` is
      within m of the best candidate's on this query ("as accurate as the best, for less").
    - ``alpha`` (0..1): the SCOPE paper's scorer, 0 = cheapest, 1 = most accurate.
    """

    model_config = ConfigDict(frozen=True)

    kind: KnobKind
    value: float

    def as_dict(self) -> dict[str, float]:
        return {self.kind: self.value}

    def __str__(self) -> str:
        return f"{self.kind}={self.value:g}"


#: what a knob may be given as: a `Knob`, or a one-item mapping such as ``{"min_accuracy": 0.8}``
KnobLike = Union[Knob, Mapping[str, Any]]


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
    if kind in _UNIT_KINDS and v > 1:
        raise InvalidKnobError(f"knob {kind} must be in [0, 1], got {v:g}")
    return Knob(kind=kind, value=v)  # type: ignore[arg-type]


#: the knob when nothing sets one and a router has no calibrated margin (`Router.default_knob`)
DEFAULT_KNOB = make_knob("accuracy_margin", DEFAULT_ACCURACY_MARGIN)


def as_knob(value: KnobLike | None, what: str = "knob") -> Knob | None:
    """The knob ``value`` says (``None`` stays ``None``): a `Knob` as it is, a mapping with one
    knob kind set (``None`` values ignored) validated; anything else raises `InvalidKnobError`."""
    if value is None or isinstance(value, Knob):
        return value
    if not isinstance(value, Mapping):
        raise InvalidKnobError(
            f"{what} must be a Knob or a mapping such as {{'min_accuracy': 0.8}}, got {value!r}"
        )
    unknown = [k for k in value if k not in KNOB_KINDS]
    if unknown:
        raise InvalidKnobError(f"unknown knob {unknown[0]!r} in {what}; use one of {', '.join(KNOB_KINDS)}")
    return _one_knob({k: v for k, v in value.items() if v is not None})


def knob_in(layer: Mapping[str, Any] | None) -> Knob | None:
    """The knob one settings layer sets (a call's keywords, a ``configurable``, a block, a
    component's arguments): ``knob=`` (a `Knob` or mapping) or one of the `KNOB_KINDS` keys;
    other keys are ignored, ``None`` values are "not set". Two knobs at once raise."""
    if not layer:
        return None
    given = {k: layer[k] for k in KNOB_KINDS if layer.get(k) is not None}
    whole = as_knob(layer.get("knob"))
    if whole is not None:
        if given:
            raise InvalidKnobError(f"set one knob at a time: knob= together with {', '.join(sorted(given))}")
        return whole
    return _one_knob(given)


def _one_knob(given: Mapping[str, Any]) -> Knob | None:
    if len(given) > 1:
        raise InvalidKnobError(f"set one knob at a time, got {', '.join(sorted(given))}")
    if not given:
        return None
    ((kind, value),) = given.items()
    return make_knob(kind, value)
