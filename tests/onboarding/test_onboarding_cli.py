"""``scope onboard`` end to end: three stand-ins onboarded and routed among on the command line, the
dry run, clear errors, and a run killed part-way (a real subprocess, SIGKILL) that resumes without
asking any logged question again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import standin_models as sm
from scope_shared import History, load_pack
from scope_shared.cli import main
from scope_shared.onboarding.graders import sandbox_support
from scope_shared.onboarding.runner import logged_outcomes

ROOT = Path(__file__).resolve().parents[2]
RUN_CODE = ["--run-code"] if sandbox_support()[0] else []
FACTORIES = {"tiny-1b": "tiny", "maths-7b": "maths", "big-70b": "big"}


def onboard_args(name: str, out: Path) -> list[str]:
    inp, outp = sm.STANDINS[name]["price"]
    return ["onboard", "--model-object", f"standin_models:{FACTORIES[name]}", "--name", name,
            "--input-price", str(inp), "--output-price", str(outp), "--out", str(out), "--no-progress", *RUN_CODE]


def test_three_standins_onboarded_and_routed_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "my-models"
    for name in FACTORIES:
        assert main(onboard_args(name, out)) == 0
        printed = capsys.readouterr().out
        assert f"Onboarding report: {name}" in printed and "95% CI" in printed and "cost per call" in printed
    history = History.load(out)
    assert all(history.n_outcomes(n) == 50 and n in history.cards for n in FACTORIES)
    assert (out / "feedback.log").is_file()

    candidates = ",".join(FACTORIES)
    assert main(["route", "Solve for x: 3x + 7 = 22. Put the answer in \\boxed{}.", "--history", str(out),
                 "--candidates", candidates, "--min-accuracy", "0.85"]) == 0
    printed = capsys.readouterr().out
    rows = [line.split()[0] for line in printed.splitlines()[1:] if line and not line.startswith("decision")]
    assert sorted(rows) == sorted(FACTORIES)  # only our models, not the pack's nine
    assert "decision: big-70b" in printed
    assert main(["route", "Who wrote Hamlet?", "--history", str(out), "--candidates", candidates, "--tradeoff", "1000000"]) == 0
    assert "decision: tiny-1b" in capsys.readouterr().out
    assert main(["route", "Who wrote Hamlet?", "--history", str(out), "--candidates", "tiny-1b,nope"]) == 2
    assert "unknown candidate 'nope'" in capsys.readouterr().err


def test_dry_run_and_clear_errors(tmp_path, capsys):
    assert main(["onboard", "--dry-run", "--name", "planned", "--input-price", "1", "--output-price", "3", "--max-spend", "0.001"]) == 0
    printed = capsys.readouterr().out
    assert "50 anchors" in printed and "expected spend $" in printed and "would stop after about" in printed
    assert "no model was called" in printed and not any(tmp_path.iterdir())
    for args, message in [
        (["onboard", "--model-object", "standin_models:tiny", "--out", str(tmp_path)], "prices"),
        (["onboard", "--model", "openai:gpt-4o-mini", "--model-object", "standin_models:tiny", "--input-price", "1",
          "--output-price", "1", "--out", str(tmp_path)], "exactly one of"),
        (["onboard", "--model-object", "standin_models:tiny", "--name", "t", "--input-price", "1", "--output-price", "1"], "--out DIR"),
        (["onboard", "--model-object", "no_such_module:x", "--name", "t", "--input-price", "1", "--output-price", "1",
          "--out", str(tmp_path / "o")], "cannot load"),
        (["onboard", "--model", "openai:gpt-4o-mini", "--input-price", "1", "--output-price", "1", "--out", str(tmp_path / "o"),
          "--pack", str(tmp_path / "nopack")], "does not exist"),
    ]:
        assert main(args) == 2, args
        assert message in capsys.readouterr().err


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def _calls(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.is_file() else []


@pytest.mark.slow
def test_killed_run_resumes_and_repeats_no_logged_call(tmp_path):
    calls, out = tmp_path / "calls.txt", tmp_path / "hist"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
           "SCOPE_TEST_CALLS": str(calls), "SCOPE_TEST_DELAY": "0.3", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "scope_shared.cli", "onboard", "--model-object", "standin_models:recording", "--name", "slow-3b",
           "--input-price", "1", "--output-price", "2", "--out", str(out), "--anchors", "30", "--concurrency", "1", "--no-progress"]
    log = out / "feedback.log"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while _lines(log) < 1 + 8 and time.time() < deadline:  # header + 8 graded outcomes
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = _calls(calls)
    assert not (out / "manifest.json").exists()  # killed before it saved: only the log holds the outcomes

    pack = load_pack()
    history = pack.history()
    history.attach_log(log)
    logged = {pack.find(t).id for t in logged_outcomes(history, "slow-3b")}
    history.detach_log()
    assert 8 <= len(logged) < 30 and logged <= set(first)
    assert len(first) - len(logged) <= 1  # at most the one call in flight at the kill is lost

    env["SCOPE_TEST_DELAY"] = "0"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    second = _calls(calls)[len(first):]
    assert not set(second) & logged  # the rerun asked no question the log already held
    assert len(second) == 30 - len(logged) and len(set(first) | set(second)) == 30
    assert f"{len(logged)} from the log" in done.stdout
    assert History.load(out).n_outcomes("slow-3b") == 30
