"""The command line answers at once: bad arguments are refused before torch, transformers or the
embedder load; ``--help`` explains the knobs; an embedder that cannot serve the history is refused
with the command that makes a matching one; a failed onboarding leaves nothing behind; progress bars
are drawn only on a terminal and never when quiet; the bundled weights are checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scope_shared.cli import main
from scope_shared.errors import ScopeError
from scope_shared.routing.knobs import DEFAULT_ACCURACY_MARGIN

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers")

# each case: argv, a phrase the error must hold
BAD = [
    (["route", ""], "query is empty"),
    (["route", "q", "--min-accuracy", "2"], "min_accuracy must be in [0, 1]"),
    (["route", "q", "--max-cost", "-1"], "max_cost must be >= 0"),
    (["route", "q", "--candidates", "gemma-2-9b-it,nosuch"], "unknown candidate 'nosuch'"),
    (["route", "q", "--candidates", ","], "--candidates names no model"),
    (["route", "q", "--embedder", "nosuch"], "unknown embedder 'nosuch'"),
    (["route", "q", "--embedder", "fast"], "scope history build --embedder fast --out DIR"),
    (["route", "q", "--history", "/nonexistent/history"], "does not exist"),
    (["demo", "--test-size", "2"], "--test-size must be between 0 and 1"),
    (["history", "build", "--out", "/nonexistent/x", "--embedder", "nosuch"], "unknown embedder 'nosuch'"),
]

CHECK = r"""
import contextlib, io, json, sys
from scope_shared.cli import main
out = []
for argv, _ in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    out.append({"rc": rc, "err": err.getvalue(), "heavy": [m for m in %r if m in sys.modules]})
print(json.dumps(out))
""" % (HEAVY,)


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}
    return env


def test_bad_arguments_are_refused_before_anything_heavy_loads(tmp_path):
    env = _env(SCOPE_EMBEDDER_DIR=str(tmp_path / "no-fast-embedder-here"))
    run = subprocess.run([sys.executable, "-c", CHECK, json.dumps(BAD)], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for (argv, phrase), got in zip(BAD, results):
        assert got["rc"] == 2, (argv, got)
        assert phrase in got["err"] and "Traceback" not in got["err"], (argv, got["err"])
        assert got["heavy"] == [], f"{argv} imported {got['heavy']} before refusing"
    assert not (tmp_path / "no-fast-embedder-here").exists()  # nothing was distilled


def test_two_knobs_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["route", "q", "--min-accuracy", "0.5", "--alpha", "0.3"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_route_help_explains_each_knob_and_that_one_may_be_set(capsys):
    with pytest.raises(SystemExit):
        main(["route", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "set at most one" in text and f"--accuracy-margin {DEFAULT_ACCURACY_MARGIN:g}" in text
    for phrase in ("most accurate candidate whose expected cost fits", "maximise p_correct - TRADEOFF",
                   "cheapest candidate predicted to reach it", "SCOPE paper's score"):
        assert phrase in text


def test_an_unfinished_onboarding_folder_is_named_as_such(tmp_path, capsys):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "feedback.log").write_bytes(b"x")
    assert main(["route", "q", "--history", str(folder)]) == 2
    assert "unfinished onboarding" in capsys.readouterr().err


def test_a_failed_onboarding_leaves_nothing_behind(tmp_path, capsys):
    out = tmp_path / "models" / "mine"
    bad = ["onboard", "--model-object", "no_such_module_here:model", "--name", "m", "--input-price", "1",
           "--output-price", "2", "--out", str(out), "--no-progress"]
    assert main(bad) == 2
    assert "cannot load" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_a_failed_onboarding_after_answers_keeps_its_log_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    """A run stopped after some graded answers keeps the folder: the same command finishes it."""
    import scope_shared.onboarding.runner as runner
    from scope_shared import History

    out = tmp_path / "mine"
    args = ["onboard", "--model-object", "standin_models:tiny", "--name", "tiny-1b", "--input-price", "0.05",
            "--output-price", "0.1", "--out", str(out), "--no-progress", "--anchors", "8", "--concurrency", "1"]
    real_ask, asked = runner._Run.ask, []

    def ask_then_stop(self, call):  # a crash (here: Ctrl-C) after three answers
        if len(asked) == 3:
            raise KeyboardInterrupt
        asked.append(call.question.id)
        return real_ask(self, call)

    monkeypatch.setattr(runner._Run, "ask", ask_then_stop)
    with pytest.raises(KeyboardInterrupt):
        main(args)
    assert (out / "feedback.log").is_file() and not (out / "manifest.json").exists()
    monkeypatch.setattr(runner._Run, "ask", real_ask)
    assert main(args) == 0
    assert History.load(out).n_outcomes("tiny-1b") == 8


def test_bars_only_on_a_terminal_and_never_when_quiet(monkeypatch):
    from scope_shared import progress

    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    assert progress.show_bars(True) and not progress.show_bars(False)
    monkeypatch.setenv(progress.QUIET_ENV, "1")
    assert not progress.show_bars(True)
    monkeypatch.setenv(progress.QUIET_ENV, "0")
    assert progress.show_bars(True)
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    assert not progress.show_bars(True)
    items = [1, 2, 3]
    assert progress.progress(items, desc="x") is items  # no bar object at all off a terminal


def test_a_command_off_a_terminal_prints_no_bars_and_no_third_party_notices(tmp_path):
    """``scope history build`` (recording outcomes: the ~200-redraw bar) then ``scope route`` (loads
    MiniLM: transformers' "Loading weights" bar), stderr piped as in CI."""
    env = _env()
    build = subprocess.run([sys.executable, "-m", "scope_shared.cli", "history", "build", "--out", str(tmp_path / "h")],
                           env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    route = subprocess.run([sys.executable, "-m", "scope_shared.cli", "route", "What is 17 * 23?", "--history",
                            str(tmp_path / "h")], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert route.returncode == 0, route.stderr[-2000:]
    assert "decision:" in route.stdout
    for err in (build.stderr, route.stderr):
        assert "it/s" not in err and "%|" not in err and "Loading weights" not in err, err[-1000:]
        assert len(err) < 300, err[-1000:]


def test_quiet_flag_is_accepted_anywhere_and_sets_the_switch(monkeypatch, capsys):
    from scope_shared import progress

    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    assert main(["route", "", "--quiet"]) == 2
    assert progress.is_quiet()
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    assert main(["--quiet", "route", ""]) == 2 and progress.is_quiet()


def test_the_bundled_weights_are_checked_against_their_recorded_digests(tmp_path):
    from scope_shared.embedders.minilm import BUNDLED_SHA256, default_model_path, verify_bundled_weights

    src = Path(default_model_path())
    assert verify_bundled_weights(str(src)) == str(src)
    copy = tmp_path / "model"
    for rel in BUNDLED_SHA256:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src / rel, copy / rel)
    (copy / "config.json").unlink()
    shutil.copy(src / "config.json", copy / "config.json")
    assert verify_bundled_weights(str(copy)) == str(copy)
    bad = tmp_path / "bad"
    shutil.copytree(copy, bad, symlinks=True)
    (bad / "config.json").write_text((src / "config.json").read_text().replace("384", "385"))
    with pytest.raises(ScopeError, match="config.json .* does not match its recorded SHA-256"):
        verify_bundled_weights(str(bad))


BLOCK_FRAMEWORK = r"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):  # as if the framework were not installed
    def find_spec(self, name, path, target=None):
        if name == sys.argv[1] or name.startswith(sys.argv[1] + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
import scope_shared, scope_shared.testing  # the core needs no framework
from scope_shared import Router, load_pack
try:
    __import__(sys.argv[2])
except ImportError as exc:
    print("ERROR:", exc)
"""


@pytest.mark.parametrize("blocked, module, extra", [
    ("langchain_core", "langchain_scope", "langchain"),
    ("llama_index.core", "llamaindex_scope", "llamaindex"),
    ("llama_index.core", "llama_index.llms.scope", "llamaindex"),
])
def test_an_integration_without_its_framework_names_the_extra_to_install(blocked, module, extra, tmp_path):
    run = subprocess.run([sys.executable, "-c", BLOCK_FRAMEWORK, blocked, module], env=_env(), capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"pip install 'scope-router[{extra}]'" in run.stdout, run.stdout


def test_onboarding_a_second_model_with_its_own_log_says_what_to_do(tmp_path):
    from scope_shared import load_pack, onboard
    from scope_shared.errors import OnboardingError
    from scope_shared.testing import ScriptedAnswerer

    history = load_pack().history()
    first = tmp_path / "first.log"
    onboard(ScriptedAnswerer("a-model", 0.6), {"name": "a-model", "input_price": 1, "output_price": 2},
            history=history, n_anchors=5, feedback_log=str(first), show_progress=False)
    with pytest.raises(OnboardingError, match="Onboard this model into the same log") as exc:
        onboard(ScriptedAnswerer("b-model", 0.4), {"name": "b-model", "input_price": 1, "output_price": 2},
                history=history, n_anchors=5, feedback_log=str(tmp_path / "second.log"), show_progress=False)
    assert str(first) in str(exc.value)
    # the advice works: without a log of its own, the second model is written to the history's log
    onboard(ScriptedAnswerer("b-model", 0.4), {"name": "b-model", "input_price": 1, "output_price": 2},
            history=history, n_anchors=5, show_progress=False)
    assert history.n_outcomes("b-model") == 5 and "b-model" in history.cards
    assert len(first.read_bytes().splitlines()) == 1 + 10  # header + both models' answers


def test_the_library_refuses_a_named_embedder_that_cannot_serve_the_history_before_building_it(tmp_path, monkeypatch):
    from scope_shared import Router, load_pack
    from scope_shared.embedders import named

    monkeypatch.setenv("SCOPE_EMBEDDER_DIR", str(tmp_path / "embedders"))
    monkeypatch.setattr(named, "build_fast", lambda *a, **k: pytest.fail("the fast embedder was distilled"))
    history = load_pack().history()
    with pytest.raises(ScopeError, match="256-d vectors, the history holds 384-d ones.*scope history reembed"):
        Router(history.cards.values(), history, embedder="fast")
