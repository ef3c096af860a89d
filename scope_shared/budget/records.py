"""What ledgers record: amounts, entries, totals, the overshoot record, and the budget modes.

Plain values and pure functions, shared by every ledger implementation (`scope_shared.budget.base`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from scope_shared.errors import InvalidBudgetError, InvalidUsageError

#: what happens when a budget cannot pay for a call
BudgetMode = Literal["raise", "end", "soft"]
MODES: tuple[str, ...] = ("raise", "end", "soft")
#: the largest amount one hold, charge or budget may be: no real call costs a trillion dollars, and
#: with this bound no sum of amounts can overflow a float
MAX_USD = 1e12
#: float tolerance when comparing dollars
EPS = 1e-15


def check_amount(value: Any, what: str = "a cost") -> float:
    """``value`` as a float USD amount, or `InvalidUsageError` naming the problem."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidUsageError(f"{what} must be a finite number of USD, got {value!r}")
    if value < 0 or value > MAX_USD:
        raise InvalidUsageError(f"{what} must be between 0 and {MAX_USD:g} USD, got {value!r}")
    return float(value)


def normalize_mode(mode: Any) -> BudgetMode:
    """A budget mode by name, checked."""
    if mode not in MODES:
        raise InvalidBudgetError(f"budget mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode  # type: ignore[return-value]


@dataclass(frozen=True)
class LedgerEntry:
    """One settled or charged call: what it really cost, what it held, and what it was."""

    cost: float
    model: str | None = None
    input_tokens: float | None = None
    output_tokens: float | None = None
    expected_cost: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    @classmethod
    def build(cls, cost: Any, values: Mapping[str, Any]) -> "LedgerEntry":
        """A validated entry (`InvalidUsageError` for a bad cost, count or an unknown field)."""
        known = {f.name for f in fields(cls)} - {"cost", "time"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidUsageError(
                f"unknown ledger entry field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        v = dict(values)
        for name in ("input_tokens", "output_tokens", "expected_cost"):
            if v.get(name) is not None:
                v[name] = check_amount(v[name], name)
        if v.get("model") is not None and not isinstance(v["model"], str):
            raise InvalidUsageError(f"model must be a string, got {v['model']!r}")
        info = v.get("info")
        if info is not None and not isinstance(info, Mapping):
            raise InvalidUsageError(f"info must be a mapping, got {type(info).__name__}")
        v["info"] = dict(info or {})
        return cls(cost=check_amount(cost), **v)


@dataclass(frozen=True)
class LedgerState:
    """A consistent snapshot of one ledger's totals (what `BaseLedger._state` returns)."""

    spent: float = 0.0
    reserved: float = 0.0
    calls: int = 0
    overshoot_calls: int = 0
    overshoot_excess: float = 0.0
    max_ratio: float = 1.0


@dataclass(frozen=True)
class Overshoot:
    """How far real costs went beyond what calls held, and beyond the budget.

    ``calls``: settled calls that cost more than they held; ``excess``: USD charged above their
    holds; ``max_ratio``: the largest cost / hold seen (1.0 when none went over); ``overdraw``:
    USD spent beyond the budget (0 within it, or when unlimited).
    """

    calls: int = 0
    excess: float = 0.0
    max_ratio: float = 1.0
    overdraw: float = 0.0


def overshoot_after(state: LedgerState, held: float, cost: float) -> LedgerState:
    """The totals once a call that held ``held`` settles at ``cost`` (pure; for implementations)."""
    over = cost > held + EPS
    ratio = cost / held if over and held > 0 else 1.0
    return LedgerState(
        spent=state.spent + cost,
        reserved=state.reserved,
        calls=state.calls + 1,
        overshoot_calls=state.overshoot_calls + int(over),
        overshoot_excess=state.overshoot_excess + (cost - held if over else 0.0),
        max_ratio=max(state.max_ratio, ratio),
    )
