"""The robustness probe's case table, run in-process (the long version, in child processes and
against any checkout: ``benchmarks/robustness_probe.py``).

Every case of the bad-input table, the untrusted-store mutations and the adversarial-model-output
cases must pass: the library's own error naming the problem, nothing changed by a failed call,
nothing read outside a store, nothing allocated that the files do not hold, no estimator failure
turned into a failed route, no hostile pack or store file (outside names, symlinks, FIFOs, gzip
bombs, sparse files, huge npy headers) read, waited on or allocated. Each case reproduces one of
the bugs found by the probes of issues 15 and 22.
"""

from __future__ import annotations

import pytest
from probe_bad_input import cases as bad_input_cases
from probe_common import run_case
from probe_pack import cases as pack_cases
from probe_reasoning import cases as reasoning_cases
from probe_store import cases as store_cases

CASES = [*bad_input_cases(), *store_cases(), *reasoning_cases(), *pack_cases()]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_probe_case(case):
    verdict = run_case(case)
    assert verdict.ok, f"{case.id}: {verdict.status}: {verdict.detail}"


def test_the_table_covers_every_reported_bug():
    ids = {c.id for c in CASES}
    for needle in ("route(ledger=str)", "History(dim='8')", "search(None)", "search(k=0)", "save(None)",
                   "Router(default_output_tokens=nan)", "add_outcomes(1.5)", "add_outcomes(True)",
                   "route(query=lone-surrogate)", "route(query=zero-width-space)", "embedder returns NaN",
                   "Outcome model stripped"):
        assert f"bad-input/{needle}" in ids, needle
    for needle in ("index.spec='RR0,Flat', trained on load", "index.spec='HNSW1', trained on load",
                   "index.spec='IVF1,PQ1x0', trained on load", "questions file dotdot outside the store",
                   "questions file absolute outside the store", "outcomes not a zip", "generation='2'",
                   "outcomes zip bomb (deflated member declaring 400 GB)", "embeddings huge npy shape (12e9 x 8)"):
        assert f"store/{needle}" in ids, needle
    assert sum(c.group == "reasoning" for c in CASES) >= 20
    for needle in ("pack/questions gzip bomb 1.6 MB -> 1.6 GB", "pack/questions file dotdot outside the pack",
                   "pack/embeddings sparse 1.5 GiB, stale checksum", "pack/embeddings npy declaring (10**12, 384)",
                   "pack/pack.json sparse 3 GiB", "store-files/questions file is a FIFO"):
        assert needle in ids, needle
