"""The in-memory `Ledger` keeps the ledger contract (`ledger_contract`, shared with other stores)."""

from __future__ import annotations

import pytest
from ledger_contract import CHECKS

from scope_shared import Ledger


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_memory_ledger_keeps_the_contract(check):
    check(Ledger)
