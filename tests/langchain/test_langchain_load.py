"""Load: 1,000 concurrent async routed calls through the LangChain `SCOPERouter`, fake candidates,
one shared `Ledger`: spend equals the sum of the per-call costs exactly, the budget is never
overdrawn by more than one call's cost, no hold is left behind. Wall time is printed."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import CARDS, toy_embedder, toy_history
from fixtures_langchain import make_candidates

from langchain_scope import SCOPERouter
from scope_shared import BudgetExceeded, Ledger, Router

N_CALLS = 1000
TOPICS = ("math", "code", "trivia", "history")


def _queries() -> list[str]:
    return [f"{TOPICS[i % 4]} question number {i}: explain item {i * 7 % 101}" for i in range(N_CALLS)]


async def _run(lc: SCOPERouter) -> tuple[list, float]:
    t0 = time.perf_counter()
    results = await asyncio.gather(*(lc.ainvoke(q) for q in _queries()), return_exceptions=True)
    return results, time.perf_counter() - t0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["raise", "soft"])
def test_thousand_concurrent_calls_share_one_ledger(mode, capsys):
    biggest = max(c.cost(12, 34) for c in CARDS)  # the fake candidates report 12 in / 34 out tokens
    budget = 0.05 * N_CALLS * biggest
    router = Router(CARDS, toy_history(), embedder=toy_embedder())
    ledger = Ledger(budget, name="load", mode=mode)
    cands = make_candidates()
    lc = SCOPERouter(candidates=cands, router=router, ledger=ledger, min_accuracy=0.9)
    results, wall = asyncio.run(_run(lc))
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, BudgetExceeded) for e in errors), {type(e).__name__ for e in errors}
    assert len(ok) + len(errors) == N_CALLS and len(ok) > 0
    if mode == "soft":
        assert not errors  # spent budgets fall back to the cheapest model instead of raising
    per_call = [m.response_metadata["scope"]["cost"] for m in ok]
    entries = ledger.entries
    # exactly: the same multiset of costs, and the ledger's total is their running sum
    assert sorted(per_call) == sorted(e.cost for e in entries)
    running = 0.0
    for e in entries:
        running += e.cost
    assert ledger.spent == running
    assert ledger.reserved == 0 and ledger.calls == len(ok)
    assert sum(len(c.calls) for c in cands.values()) == len(ok)  # no call happened unaccounted
    over = ledger.spent - budget
    if mode == "raise":
        assert over <= biggest, f"overdrawn by {over:.3g} > one call ({biggest:.3g})"
    else:  # "soft" keeps answering after the budget is spent: only cheapest-model calls overdraw
        fallback = [m for m in ok if m.response_metadata["scope"]["fallback_to_cheapest"]]
        cheapest = min(CARDS, key=lambda c: c.cost(12, 34)).cost(12, 34)
        assert over <= biggest + len(fallback) * cheapest * (1 + 1e-9)
    with capsys.disabled():
        print(
            f"\n[load] {N_CALLS} concurrent ainvoke, mode={mode}: wall {wall:.2f}s "
            f"({N_CALLS / wall:.0f} calls/s), {len(ok)} answered, {len(errors)} refused, "
            f"spent ${ledger.spent:.6f} of ${budget:.6f} (over by {max(over, 0):.2e}, one call <= {biggest:.2e})"
        )
