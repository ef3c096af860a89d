"""The in-memory `Ledger` keeps the ledger contract (`ledger_contract`, shared with other stores)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_contract import CHECKS

from scope_shared import Ledger
from scope_shared.errors import InvalidUsageError


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_memory_ledger_keeps_the_contract(check):
    check(Ledger)


amounts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**13), st.text(max_size=3), st.none(), st.booleans()
)
entry_fields = st.dictionaries(
    st.sampled_from(["model", "input_tokens", "output_tokens", "expected_cost", "info", "bogus"]),
    st.one_of(amounts, st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    max_size=3,
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(amounts, entry_fields)
def test_settling_is_total(cost, fields):
    """Any settle either succeeds once (hold released, cost charged, finite) or changes nothing."""
    ledger = Ledger(budget=1.0)
    r = ledger.reserve(0.5)
    try:
        r.settle(cost, **fields)
    except InvalidUsageError:
        assert r.open and ledger.reserved == 0.5 and ledger.spent == 0 and ledger.calls == 0
        r.cancel()
        assert ledger.reserved == 0 and not r.open
        return
    assert not r.open and ledger.reserved == 0 and ledger.calls == 1
    assert math.isfinite(ledger.spent) and ledger.spent == float(cost)
