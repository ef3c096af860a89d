"""Settling a call: from the tokens it used to the ledger entry it leaves, without ever failing.

A provider can report nonsense (NaN, negative or absurd token counts). The answer has already
been produced and billed, so settling must not raise then: such usage is set aside and the call is
charged what it held (its expected cost), flagged ``usage_invalid`` with the reason.
"""

from __future__ import annotations

import math
from typing import Any

from scope_shared.budget.base import MAX_USD
from scope_shared.cards import ModelCard
from scope_shared.routing.decision import Estimate
from scope_shared.routing.records import Usage

#: more tokens than any one call has ever used: a count above it is a reporting error
MAX_TOKENS = 1e9


def usage_problem(usage: Any) -> str | None:
    """Why ``usage`` cannot be settled from (None when it can)."""
    if not isinstance(usage, Usage):
        return f"usage is a {type(usage).__name__}, not a Usage"
    for name in ("input_tokens", "output_tokens"):
        v = getattr(usage, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"{name}={v!r} is not a finite number"
        if v < 0 or v > MAX_TOKENS:
            return f"{name}={v!r} is out of range [0, {MAX_TOKENS:g}]"
    return None


def settled_cost(card: ModelCard, usage: Usage, estimate: Estimate) -> tuple[Usage | None, float, dict[str, Any]]:
    """The usage to record, the USD to charge and extra entry info, for one answered call.

    Valid usage is priced with the card; invalid usage charges the estimate and is flagged.
    """
    problem = usage_problem(usage)
    if problem is None:
        cost = card.cost(usage.input_tokens, usage.output_tokens)
        if math.isfinite(cost) and 0 <= cost <= MAX_USD:
            return usage, cost, {}
        problem = f"priced at ${cost!r}"
    return None, estimate.expected_cost, {"usage_invalid": problem}
