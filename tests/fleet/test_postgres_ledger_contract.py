"""The shared (PostgreSQL) ledger keeps the same ledger contract as the in-memory one."""

from __future__ import annotations

import uuid

import pytest
from ledger_contract import CHECKS

from scope_shared.budget.postgres_ledger import PostgresLedger


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_postgres_ledger_keeps_the_contract(check, pg_url):
    def make(budget=None, name=None, **settings):
        return PostgresLedger(pg_url, name or f"budget-{uuid.uuid4().hex[:8]}", budget=budget, **settings)

    check(make)
