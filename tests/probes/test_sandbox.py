"""The code sandbox: the escape suite (`probe_sandbox`) on this checkout, the refusal without
bubblewrap, the loud unsafe mode, and what a sandboxed answer can see and do."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from probe_sandbox import ATTACKS, ROOT, run_suite
from scope_shared.errors import OnboardingError
from scope_shared.onboarding.graders import CodeGrader, default_graders, run_python, run_tests, sandbox_support
from scope_shared.onboarding.questions import AnchorQuestion

needs_sandbox = pytest.mark.skipif(not sandbox_support()[0], reason=f"no code sandbox here: {sandbox_support()[1]}")
QUESTION = AnchorQuestion(1, "Write f.", "mbpp", "code", tests="assert f(2) == 4\nassert f(5) == 10\n", entry_point="f")


def test_the_suite_covers_every_kind_of_attack():
    kinds = Counter(a.category for a in ATTACKS if a.category != "control")
    assert sum(kinds.values()) >= 30 and len({a.id for a in ATTACKS}) == len(ATTACKS)
    for kind in ("files", "processes", "signals", "network", "environment", "resources", "hook", "integrity"):
        assert kinds[kind] >= 2, kind
    controls = [a for a in ATTACKS if a.category == "control"]
    assert any(a.expect == "pass" and "numpy" in a.answer for a in controls) and any(a.expect == "fail" for a in controls)


@needs_sandbox
def test_escape_suite_no_escapes_no_forged_passes():
    timeout_s = 3.0
    outcomes = run_suite(ROOT, timeout_s=timeout_s)
    bad = [f"{o.id}: score={o.score} detail={o.detail!r} evidence={o.evidence}" for o in outcomes if not o.ok]
    assert not bad, "\n".join(bad)
    assert sum(o.escaped for o in outcomes) == 0 and sum(o.forged for o in outcomes) == 0
    slow = [(o.id, round(o.seconds, 1)) for o in outcomes if o.seconds > timeout_s + 5]
    assert not slow, f"grades that overran the time limit: {slow}"


@pytest.fixture
def no_bwrap(tmp_path, monkeypatch):
    """A PATH without bubblewrap on it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_run_code_refuses_without_bubblewrap_and_says_how_to_install_it(no_bwrap):
    ok, why = sandbox_support()
    assert not ok and "bubblewrap" in why and "apt-get install bubblewrap" in why
    with pytest.raises(OnboardingError, match="apt-get install bubblewrap"):
        default_graders(run_code=True)
    with pytest.raises(OnboardingError, match="run_code must be"):
        default_graders(run_code="yes")
    with pytest.raises(RuntimeError, match="bubblewrap"):
        run_python("print(1)")


def test_unsafe_mode_is_loud_and_still_grades_by_the_harness(no_bwrap):
    with pytest.warns(RuntimeWarning, match="WITHOUT the sandbox"):
        grader = default_graders(run_code="unsafe")["code"]
    assert isinstance(grader, CodeGrader)
    assert grader.grade("```python\ndef f(x):\n    return 2 * x\n```", QUESTION).score == 1.0
    for forged in ("import os\nos._exit(0)", "raise SystemExit(0)", "import atexit, os\natexit.register(lambda: os._exit(0))\ndef f(x):\n    return 0",
                   "class R:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return R()"):
        assert grader.grade(f"```python\n{forged}\n```", QUESTION).score == 0.0, forged


@needs_sandbox
def test_the_sandbox_holds_only_what_python_needs():
    listing = run_python(
        "import os, sys\n"
        "print(sorted(os.listdir('/')))\nprint(sorted(os.listdir('/etc')))\nprint(os.getuid(), os.getpid() < 10)\n"
        f"print(os.path.exists({str(ROOT)!r}), os.path.exists('/etc/shadow'), os.path.exists('/home'))\n"
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
        "import numpy\nprint(numpy.arange(4).sum())\n", timeout_s=20)
    assert listing.passed, listing.detail
    root, etc, ids, hidden, caps, numpy_sum = listing.stdout.strip().splitlines()
    assert not {"home", "work", "mnt", "var", "opt"} & set(eval(root)) - {os.path.realpath(os.sys.base_prefix).split("/")[1]}
    assert set(eval(etc)) <= {"ld.so.cache", "ld.so.conf", "ld.so.conf.d"}
    assert ids == "65534 True" and hidden == "False False False" and int(caps, 16) == 0 and numpy_sum == "6"


@needs_sandbox
def test_numpy_answers_pass_and_plain_data_crosses_back_intact():
    program = ("import numpy as np, collections, enum\nclass E(enum.IntEnum):\n    A = 5\n"
               "def f(n):\n    return {'a': (1, 2.5), 'b': {3, 4}, 'c': b'x', 'd': float('nan'), 'e': np.int64(7), 'g': 2 ** 70,\n"
               "            'h': collections.Counter('aab'), 'i': E.A, 'j': collections.namedtuple('P', 'x y')(1, 2)}\n")
    tests = ("r = f(1)\nassert r['a'] == (1, 2.5) and type(r['a']) is tuple and r['b'] == {3, 4} and r['c'] == b'x'\n"
             "assert r['d'] != r['d'] and r['e'] == 7 and type(r['e']) is int and r['g'] == 2 ** 70\n"
             "assert r['h'] == {'a': 2, 'b': 1} and r['i'] == 5 and r['j'] == (1, 2)\n"
             "assert all(type(v) in (tuple, set, bytes, float, int, dict) for v in r.values())\n")
    result = run_tests(program, tests, timeout_s=20)
    assert result.passed, result.detail


@needs_sandbox
def test_answer_exceptions_reach_the_tests_as_builtin_types():
    program = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    tests = "try:\n    f(-1)\n    raise AssertionError('no error')\nexcept ValueError as e:\n    assert 'negative' in str(e)\nassert f(3) == 3\n"
    assert run_tests(program, tests, timeout_s=10).passed
    failed = run_tests(program, "assert f(-1) == 1\n", timeout_s=10)
    assert not failed.passed and failed.detail.startswith("ValueError: negative")


@needs_sandbox
def test_an_entry_point_named_like_a_builtin_is_the_answers():
    sum_q = AnchorQuestion(2, "Write a python function to find the sum of common divisors of two given numbers.", "mbpp", "code",
                           tests="assert sum(10,15) == 6\nassert sum(4,6) == 3\n", entry_point="sum")
    right = "```python\ndef sum(a, b):\n    return __builtins__.sum(d for d in range(1, min(a, b) + 1) if a % d == 0 and b % d == 0)\n```"
    grader = CodeGrader(timeout_s=10)
    assert grader.grade(right, sum_q).score == 1.0
    shadow = "```python\ndef len(x):\n    return 3\ndef f(x):\n    return [x]\n```"  # not the entry point: the tests keep the real len
    assert grader.grade(shadow, AnchorQuestion(3, "Write f.", "mbpp", "code", tests="assert len(f(1)) == 3\n", entry_point="f")).score == 0.0


def test_a_bubblewrap_that_cannot_make_namespaces_is_refused_with_its_reason(tmp_path, monkeypatch):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    ok, why = sandbox_support()
    assert not ok and "No permissions to create new namespace" in why and "apt-get install bubblewrap" in why
    with pytest.raises(OnboardingError, match="cannot make a sandbox here"):
        CodeGrader()


@needs_sandbox
def test_a_big_top_level_table_stays_in_the_answers_process():
    program = "TABLE = {i: str(i) * 20 for i in range(200_000)}\ndef f(i):\n    return TABLE[i]\n"
    assert run_tests(program, "assert f(7) == '7' * 20\nassert len(TABLE) == 200_000\n", timeout_s=20).passed
