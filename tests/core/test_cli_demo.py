"""The command line and the demo, end to end with the bundled embedder (offline)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scope_shared.cli import main

ROWS = [
    ("What is 17 * 23?", "math"), ("Solve for x: 2x + 3 = 11.", "math"), ("Integrate x^2 from 0 to 3.", "math"),
    ("Write a Python function that reverses a string.", "code"), ("Implement binary search in Python.", "code"),
    ("Who wrote Hamlet?", "trivia"), ("What is the capital of Japan?", "trivia"), ("Which planet is largest?", "trivia"),
]


@pytest.fixture
def table_files(tmp_path):
    rows = []
    for q, topic in ROWS:
        rows.append({"question": q, "model": "small", "score": float(topic == "trivia"), "output_tokens": 20, "benchmark": topic})
        rows.append({"question": q, "model": "big", "score": 1.0, "output_tokens": 200, "benchmark": topic})
    rp, mp = tmp_path / "rows.jsonl", tmp_path / "prices.json"
    rp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mp.write_text(json.dumps({"small": {"input_price": 0.1, "output_price": 0.1}, "big": {"input_price": 5, "output_price": 15}}))
    return rp, mp


def test_history_build_info_route(tmp_path, table_files, capsys):
    rp, mp = table_files
    out = tmp_path / "hist"
    assert main(["history", "build", "--table", str(rp), "--models", str(mp), "--out", str(out)]) == 0
    assert main(["history", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["questions"] == len(ROWS) and set(info["models"]) == {"small", "big"}

    def p_small(question: str) -> float:
        assert main(["route", question, "--history", str(out), "--tradeoff", "0"]) == 0
        printed = capsys.readouterr().out
        assert "decision: big" in printed  # most accurate
        line = next(x for x in printed.splitlines() if x.startswith("small "))
        return float(line.split()[1])

    # the small model's anchors say it does trivia, not maths
    assert p_small("Who painted the Mona Lisa?") > p_small("Compute the derivative of x^3.")
    # the accuracy-margin knob: a margin of 1 admits every model, so the cheapest answers
    assert main(["route", "Who painted the Mona Lisa?", "--history", str(out), "--accuracy-margin", "1"]) == 0
    assert "decision: small" in capsys.readouterr().out
    with pytest.raises(SystemExit) as two_knobs:  # argparse refuses a second knob (a usage error)
        main(["route", "Who painted it?", "--history", str(out), "--accuracy-margin", "1", "--tradeoff", "0"])
    assert two_knobs.value.code == 2
    assert "not allowed with argument --accuracy-margin" in capsys.readouterr().err


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["history", "info", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["route", " ", "--history", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "history" in err or "empty" in err


@pytest.mark.slow
def test_demo_on_a_subset_prints_tables(capsys):
    from scope_shared.cli.demo import run_demo
    from scope_shared.onboarding import load_pack

    table = load_pack().to_table()  # what a plain install has: no ../shared/data needed
    sub = table.subset(np.arange(0, len(table), 12))  # ~500 questions keep it quick
    result = run_demo(table=sub, seed=1)
    out = capsys.readouterr().out
    assert "best single model" in out and "cheapest model" in out and "per 1k queries" in out
    assert len(result.settings) == 4 and next(iter(result.settings)).startswith("the default (accuracy_margin=")
    assert "The default:" in out and "of its cost" in out
    for pt, share in result.settings.values():
        assert 0 <= pt.accuracy <= 1 and pt.cost > 0
        assert sum(share.values()) == pytest.approx(1.0)
    assert ("costs" in out and "less" in out) or "did not reach" in out
