"""Every grader on real answers, right and wrong, in the formats models really use; the code
sandbox's confinement; the LLM judge over a LangChain chat model."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from scope_shared import load_pack
from scope_shared.errors import OnboardingError
from scope_shared.onboarding.graders import (
    CodeGrader,
    ConceptCoverageGrader,
    ExactMatchGrader,
    F1Grader,
    FinalNumberGrader,
    FunctionGrader,
    LLMJudgeGrader,
    MathGrader,
    MultipleChoiceGrader,
    build_program,
    default_graders,
    grade_answer,
    merge_graders,
    run_python,
    sandbox_support,
)
from scope_shared.onboarding.questions import AnchorQuestion, Choices

PACK = load_pack()


def pack_question(benchmark: str, text_start: str) -> AnchorQuestion:
    return next(q for q in PACK.questions if q.benchmark == benchmark and q.text.startswith(text_start))


def score(grader, answer: str, q: AnchorQuestion) -> float:
    return grader.grade(answer, q).score


# ---------------------------------------------------------------- multiple choice
MC = AnchorQuestion(0, "Which planet is largest?", "demo", "multiple_choice", reference="C",
                    choices=Choices.from_texts(["Mars", "Venus", "Jupiter", "Mercury"]))


@pytest.mark.parametrize("answer", [
    "(C)", "C", "C.", "C) Jupiter", "The answer is (C).", "Answer: C", "**C**",
    "Mars is small and Venus is hot, so the answer is (C) Jupiter.", "Jupiter", "The answer is Jupiter.",
    "I first thought (A), but the correct option is (C).",
])
def test_multiple_choice_right(answer):
    assert score(MultipleChoiceGrader(), answer, MC) == 1.0


@pytest.mark.parametrize("answer", ["(A)", "B", "The answer is (D).", "Mars", "Answer: A. Mars", "I don't know", ""])
def test_multiple_choice_wrong(answer):
    assert score(MultipleChoiceGrader(), answer, MC) == 0.0


def test_multiple_choice_on_pack_questions_with_other_labels():
    csqa = pack_question("commonsense_qa", "Where would you be unlikely to find more than one steak house?")
    assert csqa.choices.labels == ("A", "B", "C", "D", "E")
    assert score(MultipleChoiceGrader(), "Strip malls rarely hold two of anything; the answer is (E).", csqa) == 1.0
    assert score(MultipleChoiceGrader(), "(D) city", csqa) == 0.0
    # ARC questions sometimes label options 1-4: a "(4)" is read as label 4, not as a number in the text
    arc = next(q for q in PACK.questions if q.benchmark == "arc_challenge" and q.choices.labels[0] == "1")
    right, wrong = arc.reference, next(lab for lab in arc.choices.labels if lab != arc.reference)
    assert score(MultipleChoiceGrader(), f"The answer is ({right}).", arc) == 1.0
    assert score(MultipleChoiceGrader(), f"({wrong})", arc) == 0.0


# ---------------------------------------------------------------- exact match, F1
def test_f1_and_exact_match_with_normalisation():
    nq = pack_question("natural_qa", "who sings i've got to be me")
    assert nq.reference == "Sammy Davis, Jr"
    f1 = F1Grader()
    assert score(f1, "Sammy Davis, Jr", nq) == 1.0
    assert score(f1, "The song was made famous by Sammy Davis Jr.", nq) == 1.0  # contained, punctuation aside
    assert 0.5 < score(f1, "Sammy Davis", nq) < 1.0  # partial credit
    assert score(f1, "Frank Sinatra", nq) == 0.0
    assert 0 < score(F1Grader(containment=False), "The song was made famous by Sammy Davis Jr.", nq) < 1.0
    em = ExactMatchGrader()
    assert score(em, "sammy davis jr", nq) == 1.0
    assert score(em, "After some thought, the answer is: Sammy Davis, Jr.", nq) == 1.0
    assert score(em, "Sammy Davis", nq) == 0.0


# ---------------------------------------------------------------- numbers, MATH
def test_final_number_gsm8k_style():
    q = pack_question("gsm8k", "Goldie makes $5 an hour")
    assert q.reference == "250"
    g = FinalNumberGrader()
    worked = "Last week she earned 5 * 20 = $100. This week 5 * 30 = $150. In total 100 + 150 = 250.\n#### 250"
    assert score(g, worked, q) == 1.0
    assert score(g, "She earned $100 and then $150, so the answer is $250.00.", q) == 1.0
    assert score(g, "Total: 100 + 150 = 250", q) == 1.0
    assert score(g, "She earned 5 * 20 = 100 dollars.\n#### 100", q) == 0.0
    assert score(g, "I cannot work this out.", q) == 0.0
    big = AnchorQuestion(1, "How much?", "gsm8k", "final_number", reference="20000")
    assert score(g, "Blake gave Connie $20,000.\n#### 20,000", big) == 1.0


def test_math_boxed_equivalence():
    line = pack_question("math", "What is the equation of the line parallel to $4x+2y=8$")
    assert line.reference == "y=-2x+1"
    g = MathGrader()
    assert score(g, "The slope is -2, so the line is $\\boxed{y = -2x + 1}$.", line) == 1.0
    assert score(g, "so \\boxed{-2x+1}", line) == 1.0
    assert score(g, "The slope is -2, so \\boxed{y = 2x + 1}", line) == 0.0
    assert score(g, "y = -2x + 1", line) == 0.0  # neither boxed nor stated as the final answer
    half = AnchorQuestion(2, "Compute", "math", "math", reference="\\frac{1}{2}")
    for right in ("\\boxed{\\frac12}", "\\boxed{\\dfrac{1}{2}}", "\\boxed{0.5}", "\\boxed{1/2}", "The final answer is 1/2."):
        assert score(g, right, half) == 1.0, right
    assert score(g, "\\boxed{\\frac{1}{3}}", half) == 0.0
    deg = AnchorQuestion(3, "Angle?", "math", "math", reference="30^\\circ")
    assert score(g, "\\boxed{30}", deg) == 1.0
    units = AnchorQuestion(4, "Length?", "math", "math", reference="5")
    assert score(g, "\\boxed{5 \\text{ cm}}", units) == 1.0
    nested = AnchorQuestion(5, "Root?", "math", "math", reference="\\sqrt{2}")
    assert score(g, "\\boxed{\\sqrt2}", nested) == 1.0
    mgsm = pack_question("agentverse-mgsm", "Kim has started his own housekeeping business")
    assert score(g, "He earns ... in total. \\boxed{20}", mgsm) == 1.0
    assert score(g, "\\boxed{21}", mgsm) == 0.0


# ---------------------------------------------------------------- CommonGen
def test_concept_coverage_counts_inflections():
    q = AnchorQuestion(6, "dog, frisbee, catch, throw", "commongen", "concept_coverage", reference="dog, frisbee, catch, throw")
    g = ConceptCoverageGrader()
    assert score(g, "The boy throws a frisbee and his dog catches it.", q) == 1.0
    assert score(g, "A dog sleeps.", q) == 0.25
    assert score(g, "The cat sat on the mat.", q) == 0.0
    carry = AnchorQuestion(7, "carry, stop", "commongen", "concept_coverage", reference="carry, stop, drive")
    assert score(g, "She carried the box, stopped, then kept driving.", carry) == 1.0
    assert score(g, "A dogmatic stopwatch.", carry) == 0.0  # words that merely start like a concept do not count


# ---------------------------------------------------------------- code
needs_sandbox = pytest.mark.skipif(not sandbox_support()[0], reason=f"code cannot be confined here: {sandbox_support()[1]}")

HAS_CLOSE_RIGHT = '''Here is a straightforward solution:

```python
from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for b in numbers[i + 1:]:
            if abs(a - b) < threshold:
                return True
    return False
```
'''
HAS_CLOSE_BODY = """    for i, a in enumerate(numbers):
        for b in numbers[i + 1:]:
            if abs(a - b) < threshold:
                return True
    return False
"""
HAS_CLOSE_WRONG = "```python\ndef has_close_elements(numbers, threshold):\n    return len(numbers) > 1\n```"
MAX3_RIGHT = "```python\ndef max_of_three(a, b, c):\n    return max(a, b, c)\n```"
MAX3_WRONG = "[BEGIN]\ndef max_of_three(a, b, c):\n    return a\n[DONE]"


@needs_sandbox
def test_code_answers_run_against_the_tests():
    he = pack_question("human_eval", "from typing import List\n\n\ndef has_close_elements")
    assert he.entry_point == "has_close_elements"
    g = CodeGrader(timeout_s=10)
    assert score(g, HAS_CLOSE_RIGHT, he) == 1.0
    assert score(g, HAS_CLOSE_BODY, he) == 1.0  # a body only: completed under the stub
    wrong = g.grade(HAS_CLOSE_WRONG, he)
    assert wrong.score == 0.0 and "AssertionError" in wrong.detail
    mbpp = pack_question("mbpp", "Write a function to find maximum of three numbers.")
    assert "assert max_of_three(10,20,30)==30" in mbpp.tests
    assert score(g, MAX3_RIGHT, mbpp) == 1.0
    assert score(g, MAX3_WRONG, mbpp) == 0.0
    assert score(g, "```python\ndef max_of_three(a, b, c)\n    return max(a, b, c)\n```", mbpp) == 0.0  # syntax error
    program = build_program(HAS_CLOSE_BODY, he)
    assert program.startswith(he.text.rstrip()) and program.rstrip().endswith("check(has_close_elements)")


@needs_sandbox
@pytest.mark.parametrize("code", [
    "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)",
    "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)",
    "import os\nassert os.system('echo hi') == 0",
    "import subprocess\nsubprocess.run(['true'])",
    "import os\nos.fork()",
    "import ctypes\nassert ctypes.CDLL(None).fork() >= 0",
    "import os\nos.execv('/bin/true', ['true'])",
])
def test_sandbox_refuses_network_and_new_processes(code):
    result = run_python(code, timeout_s=10)
    assert not result.passed and not result.timed_out and result.detail


@needs_sandbox
def test_sandbox_confines_writes_time_and_memory(tmp_path):
    outside = tmp_path / "outside.txt"
    result = run_python(f"open({str(outside)!r}, 'w').write('x')", timeout_s=10)
    assert not result.passed and not outside.exists()
    assert run_python("open('inside.txt', 'w').write('fine')\nprint(open('inside.txt').read())", timeout_s=10).stdout.strip() == "fine"
    spin = run_python("while True:\n    pass", timeout_s=2)
    assert spin.timed_out and not spin.passed and spin.detail == "timed out"
    hog = run_python("x = bytearray(4 * 1024 ** 3)", timeout_s=10, memory_mb=256)
    assert not hog.passed and "MemoryError" in hog.stderr
    host_dir = tmp_path / "store"
    host_dir.mkdir()
    (host_dir / "keep.txt").write_text("keep")
    wipe = run_python(f"import shutil\nshutil.rmtree({str(host_dir)!r})", timeout_s=10)
    assert not wipe.passed and (host_dir / "keep.txt").read_text() == "keep"
    assert run_python("print(sum(range(10)))", timeout_s=10).stdout.strip() == "45"


def test_code_grading_is_opt_in():
    assert "code" not in default_graders()
    if sandbox_support()[0]:
        assert isinstance(default_graders(run_code=True)["code"], CodeGrader)
    else:  # pragma: no cover - on platforms that cannot confine code
        with pytest.raises(OnboardingError, match="code grading is off"):
            default_graders(run_code=True)


# ---------------------------------------------------------------- judge, plumbing
def test_llm_judge_over_a_langchain_chat_model():
    judge = GenericFakeChatModel(messages=iter([
        AIMessage(content="The answer names Jupiter, the right option.\nVERDICT: CORRECT"),
        AIMessage(content="It names Mars.\nVERDICT: INCORRECT"),
        AIMessage(content="Half right.\nSCORE: 0.5"),
        AIMessage(content="I refuse to say."),
        AIMessage(content="Still no verdict."),
    ]))
    g = LLMJudgeGrader(judge)
    assert score(g, "Jupiter", MC) == 1.0
    assert score(g, "Mars", MC) == 0.0
    assert score(g, "Jupiter or Mars", MC) == 0.5
    with pytest.raises(OnboardingError, match="no VERDICT"):
        g.grade("Jupiter", MC)
    assert g.calls == 5 and g.input_tokens > 0  # usage counted (locally: the fake reports none)


def test_grader_plumbing():
    q = AnchorQuestion(8, "Say hi", "demo", "judge")
    with pytest.raises(OnboardingError, match="no grader for metric 'judge'"):
        grade_answer("hi", q)
    graders = merge_graders(default_graders(), {"llm_judge": lambda answer, question: float("hi" in answer)})
    assert isinstance(graders["judge"], FunctionGrader)
    assert grade_answer("hi there", q, graders).score == 1.0
    with pytest.raises(OnboardingError, match="must be a number in"):
        grade_answer("hi", q, merge_graders({}, {"judge": lambda a, q: 2.0}))
    with pytest.raises(Exception, match="unknown metric"):
        merge_graders({}, {"bleu": lambda a, q: 1.0})
    assert Path(PACK.path / "LICENSE").is_file()
