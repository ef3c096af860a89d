"""The onboarding spend cap under concurrency, and usage records that cannot be true (issue 22).

A model whose answers run 20x longer than the card assumes, asked 16 at a time under a cap worth
a few calls: the run may overshoot the cap by at most what the calls in flight cost beyond their
holds, and holds follow the worst cost ratio seen (one call in flight until the first real cost
is known). A usage record that is negative or absurd is one failed call, reported, not a failed run.
"""

from __future__ import annotations

import pytest

from scope_shared import load_pack, onboard
from scope_shared.onboarding.scripted import ScriptedAnswerer

PACK = load_pack()
CARD = {"name": "wordy", "input_price": 1.0, "output_price": 10.0, "default_output_tokens": 256}


def test_the_cap_holds_under_concurrency_with_answers_20x_longer_than_assumed():
    model = ScriptedAnswerer("wordy", 0.5, verbosity=40 * 256, delay_s=0.02)
    res = onboard(model, CARD, n_anchors=50, max_spend=0.01, concurrency=16, show_progress=False)
    rep = res.report
    per_call = [r.cost for r in res.results if not r.reused]
    assert rep.calls_made >= 1 and rep.skipped_by_cap > 0
    # overshoot at most one call in flight at the time the cap was reached, held at its estimate
    assert rep.spent_this_run <= 0.01 + max(per_call), (rep.spent_this_run, per_call)
    assert rep.spent_this_run / 0.01 < 8.0  # before: 16.5x


@pytest.mark.parametrize("usage", [{"input_tokens": -5, "output_tokens": 10}, {"input_tokens": 10, "output_tokens": 1e15},
                                   {"input_tokens": 10, "output_tokens": -1}])
def test_a_bad_usage_record_is_one_failed_call_not_a_failed_run(usage):
    honest = ScriptedAnswerer("liar", 0.5)
    calls = []

    def model(prompt: str):
        out = honest(prompt)
        calls.append(prompt)
        return {**out, **usage} if len(calls) == 3 else out

    res = onboard(model, {"name": "liar", "input_price": 1.0, "output_price": 2.0}, n_anchors=10, concurrency=1,
                  show_progress=False)
    rep = res.report
    assert rep.calls_made == 9 and len(rep.failed) == 1, rep.failed
    assert "usage" in rep.failed[0]
    assert res.history.n_outcomes("liar") == 9
    assert rep.spent_this_run > 0 and rep.spent_this_run < 1.0  # the bad call is charged what it held, not 1e15 tokens
