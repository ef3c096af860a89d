"""Many processes on one history store and one feedback log (real processes, no mocks).

Each test reproduces a data-loss case the issue-15 probe found on the previous code:
concurrent saves that corrupted the store, a shared log whose outcomes vanished after a save and
reload, loads failing while another process saved, a restored log whose new records were skipped,
and temporary files of killed saves never swept. ``benchmarks/robustness_probe.py`` runs more
trials of the same scenarios.
"""

from __future__ import annotations

import pytest
from probe_common import run_case
from probe_concurrency import cases

CASES = cases(trials=1, procs=3, records=80, kills=6, seconds=2.0)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_many_processes(case):
    verdict = run_case(case)
    assert verdict.ok, f"{case.id}: {verdict.status}: {verdict.detail}"
