"""RAG pipelines under a raise-mode budget never overdraw it: a LangChain chain (retriever + stuff
prompt) and a LlamaIndex query engine (compact and refine, chat models, three chunks), 200 queries
each, sync and async; providers that bill 1-3x what was held overshoot a bounded, recorded amount."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fixtures_langchain import make_router
from fixtures_rag import QUERIES, billing_chats, billing_llms, langchain_rag_chain, llamaindex_rag_engine

from langchain_scope import SCOPERouter
from llamaindex_scope import SCOPELLM
from scope_shared import BudgetExceeded, Ledger

pytestmark = pytest.mark.slow
BUDGET = 0.6  # about 40% of what the 200 queries cost unbudgeted: the cap is reached


def _check_never_overdrawn(ledger: Ledger, answered: int, stopped: int) -> None:
    assert answered > 0 and stopped > 0, "the budget should be reached"
    assert answered + stopped == len(QUERIES)
    assert ledger.spent <= ledger.budget and ledger.overshoot.overdraw == 0 and ledger.overshoot.calls == 0
    assert ledger.reserved == 0
    assert sum(e.cost for e in ledger.entries) == pytest.approx(ledger.spent)


def _run_sync(ask: Any, ledger: Ledger) -> tuple[int, int]:
    answered = stopped = 0
    for q in QUERIES:
        try:
            ask(q)
            answered += 1
        except BudgetExceeded:
            stopped += 1
        assert ledger.spent <= ledger.budget  # after every query, not only at the end
    return answered, stopped


async def _run_async(ask: Any, concurrency: int = 8) -> tuple[int, int]:
    gate = asyncio.Semaphore(concurrency)

    async def one(q: str) -> bool:
        async with gate:
            try:
                await ask(q)
                return True
            except BudgetExceeded:
                return False

    done = await asyncio.gather(*(one(q) for q in QUERIES))
    return sum(done), len(done) - sum(done)


# ---------------------------------------------------------------- LangChain
def test_langchain_rag_chain_200_queries_never_overdraw():
    ledger = Ledger(BUDGET)
    chain = langchain_rag_chain(SCOPERouter(candidates=billing_chats(), router=make_router()))
    config = {"configurable": {"scope_ledger": ledger}}
    _check_never_overdrawn(ledger, *_run_sync(lambda q: chain.invoke(q, config=config), ledger))


async def test_langchain_rag_chain_200_concurrent_queries_never_overdraw():
    ledger = Ledger(BUDGET)
    chain = langchain_rag_chain(SCOPERouter(candidates=billing_chats(), router=make_router()))
    config = {"configurable": {"scope_ledger": ledger}}
    _check_never_overdrawn(ledger, *await _run_async(lambda q: chain.ainvoke(q, config=config)))


# ---------------------------------------------------------------- LlamaIndex
@pytest.mark.parametrize("mode", ["compact", "refine"])
def test_llamaindex_rag_engine_200_queries_never_overdraw(mode):
    ledger = Ledger(BUDGET)
    engine = llamaindex_rag_engine(SCOPELLM(make_router(), billing_llms(), ledger=ledger), mode)
    _check_never_overdrawn(ledger, *_run_sync(engine.query, ledger))


@pytest.mark.parametrize("mode", ["compact", "refine"])
async def test_llamaindex_rag_engine_200_concurrent_queries_never_overdraw(mode):
    ledger = Ledger(BUDGET)
    engine = llamaindex_rag_engine(SCOPELLM(make_router(), billing_llms(), ledger=ledger), mode)
    _check_never_overdrawn(ledger, *await _run_async(engine.aquery))


# ---------------------------------------------------------------- billing above the hold
def _bounded(ledger: Ledger) -> None:
    o = ledger.overshoot
    assert o.calls > 0 and o.max_ratio > 1.5  # recorded
    largest_hold = max(e.expected_cost * ledger.max_hold_factor for e in ledger.entries)
    # bounded: only a call admitted before the budget ran out can overdraw it, by at most
    # (3 - 1) x what it held; 8 at a time in flight
    assert o.overdraw <= 8 * 2 * largest_hold
    assert o.overdraw <= 0.10 * ledger.budget  # in these pipelines: under 10% of the budget
    assert ledger.summary()["overshoot"]["overdraw"] == pytest.approx(o.overdraw)  # visible


async def test_providers_billing_1_to_3x_overshoot_a_bounded_recorded_amount():
    lc = Ledger(BUDGET)
    chain = langchain_rag_chain(SCOPERouter(candidates=billing_chats(bill=(1.0, 3.0)), router=make_router()))
    await _run_async(lambda q: chain.ainvoke(q, config={"configurable": {"scope_ledger": lc}}))
    _bounded(lc)
    li = Ledger(BUDGET)
    engine = llamaindex_rag_engine(SCOPELLM(make_router(), billing_llms(bill=(1.0, 3.0)), ledger=li), "refine")
    await _run_async(engine.aquery)
    _bounded(li)
