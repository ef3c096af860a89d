"""Scripted stand-ins for real models: they answer a pack's questions in each real format, right at
a set rate, with token usage. For trying onboarding without an API key (the notebook, the docs) and
for tests: no network, deterministic.

A `ScriptedAnswerer` recognises the prompt `render_prompt` made for a pack question and writes an
answer the way models do: "(B)" or "The answer is (B)." or the option's text; a worked solution
ending "#### 42"; a ``\\boxed{...}`` answer; a sentence using the CommonGen concepts; code in a
```python block. Whether it is right is drawn once per question (``skill``, overall or per
benchmark, seeded by the model's name). Code answers that are right are lookup tables built from the
question's tests (the pack has no reference solutions), so a code question whose tests are not
plain ``assert f(...) == value`` lines is answered wrong; `intended` says what was meant.
"""

from __future__ import annotations

import ast
import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any

from scope_shared.onboarding.graders.text import normalize_text
from scope_shared.onboarding.pack import AnchorPack, load_pack
from scope_shared.onboarding.questions import AnchorQuestion, render_prompt
from scope_shared.tokens import approx_token_count

_FILLER = ("quietly", "yesterday", "everyone", "somewhere", "gently", "nothing", "perhaps", "beyond", "afterward", "plainly")


class ScriptedRateLimitError(RuntimeError):
    """What a scripted model raises when told to fail like a rate-limited API (HTTP 429)."""

    status_code = 429


def _literal(node: ast.AST) -> Any:
    return ast.literal_eval(node)


def _call_args(node: ast.AST, names: set[str]) -> tuple[Any, ...] | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names and not node.keywords:
        return tuple(_literal(a) for a in node.args)
    return None


def _expectation(test: ast.AST, names: set[str]) -> tuple[tuple[Any, ...], Any] | None:
    """(arguments, expected value) of one ``assert`` line, for the forms lookup tables can satisfy."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and (args := _call_args(test.operand, names)) is not None:
        return args, False
    if (args := _call_args(test, names)) is not None:
        return args, True
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, (ast.Eq, ast.Is)) and (args := _call_args(left, names)) is not None:
            return args, _literal(right)
        # abs(f(x) - y) < tol
        if (isinstance(op, (ast.Lt, ast.LtE)) and isinstance(left, ast.Call) and isinstance(left.func, ast.Name)
                and left.func.id == "abs" and len(left.args) == 1 and isinstance(left.args[0], ast.BinOp)
                and isinstance(left.args[0].op, ast.Sub) and (args := _call_args(left.args[0].left, names)) is not None):
            return args, _literal(left.args[0].right)
    return None


def lookup_solution(q: AnchorQuestion) -> str | None:
    """A function that passes ``q``'s tests by looking the expected values up; None if their form is not
    understood."""
    if not q.tests or not q.entry_point:
        return None
    try:
        tree = ast.parse(q.tests)
        table = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                if isinstance(node.test, ast.Constant) and node.test.value is True:
                    continue
                got = _expectation(node.test, {q.entry_point, "candidate"})
                if got is None:
                    return None
                table[repr(got[0])] = got[1]
    except (SyntaxError, ValueError, TypeError, RecursionError):
        return None
    if not table:
        return None
    return f"_EXPECTED = {table!r}\n\n\ndef {q.entry_point}(*args):\n    return _EXPECTED[repr(args)]\n"


class ScriptedAnswerer:
    """Answers pack questions in their formats, right with probability ``skill`` (see the module doc).

    Call it with a prompt (it is a plain callable model: ``prompt -> {"text", "input_tokens",
    "output_tokens"}``). ``verbosity`` adds that many words of working to each answer (more output
    tokens); ``delay_s`` sleeps per call; ``fail_first`` makes the first calls raise a 429-like error.
    """

    def __init__(
        self,
        name: str,
        skill: float | Mapping[str, float] = 0.5,
        pack: AnchorPack | None = None,
        *,
        verbosity: int = 0,
        delay_s: float = 0.0,
        fail_first: int = 0,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.skill = skill
        self.pack = pack or load_pack()
        self.verbosity = verbosity
        self.delay_s = delay_s
        self.seed = seed
        self._failures_left = fail_first
        self._by_prompt = {render_prompt(q): q for q in self.pack.questions}
        self.calls: list[int] = []  # question ids asked, in order
        self.intended: dict[int, bool] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- deciding
    def rate(self, benchmark: str) -> float:
        return float(self.skill.get(benchmark, self.skill.get("*", 0.5))) if isinstance(self.skill, Mapping) else float(self.skill)

    def means_right(self, q: AnchorQuestion) -> bool:
        """Whether this model answers ``q`` right (a deterministic draw per model and question)."""
        digest = hashlib.sha256(f"{self.name}:{self.seed}:{q.id}".encode()).digest()
        return int.from_bytes(digest[:8], "little") / 2**64 < self.rate(q.benchmark)

    # ---------------------------------------------------------------- answering
    def _wrong_reference(self, q: AnchorQuestion) -> str:
        mine = set(normalize_text(q.reference or "").split())
        for other in self.pack.questions[q.id + 1:] + self.pack.questions[:q.id]:
            if other.benchmark == q.benchmark and other.reference and not mine & set(normalize_text(other.reference).split()):
                return other.reference
        return "no idea"

    def _answer(self, q: AnchorQuestion, right: bool) -> tuple[str, bool]:
        style = q.id % 3
        if q.metric == "multiple_choice":
            assert q.choices is not None
            labels = q.choices.labels
            label = q.reference if right else labels[(labels.index(q.reference) + 1 + q.id % (len(labels) - 1)) % len(labels)]
            text = q.choices.text_of(label)
            unique = sum(normalize_text(t) == normalize_text(text or "") for t in q.choices.texts) == 1
            if style == 2 and unique and normalize_text(text or ""):
                return f"The answer is {text}", right
            return (f"({label})" if style == 0 else f"Looking at the options, the answer is ({label}).", right)
        if q.metric in ("f1", "exact_match"):
            return f"The answer is {q.reference if right else self._wrong_reference(q)}.", right
        if q.metric == "final_number":
            value = float(q.reference or 0)
            shown = value if right else value + 1
            number = f"{shown:,.0f}" if shown == int(shown) else f"{shown:g}"
            return f"Working through the problem step by step gives the total.\n#### {number}", right
        if q.metric == "math":
            ref = q.reference or "0"
            wrong = str(int(ref) + 1) if ref.lstrip("-").isdigit() else f"{ref}+1"
            return f"Simplifying, the result is $\\boxed{{{ref if right else wrong}}}$.", right
        if q.metric == "concept_coverage":
            concepts = [c.strip() for c in (q.reference or "").split(",") if c.strip()]
            if right:
                return "In one busy scene we see " + ", ".join(concepts) + " all together.", right
            safe = [w for w in _FILLER if not any(w.startswith(c.lower()) for c in concepts)]
            return " ".join(safe[:6]).capitalize() + ".", right
        if q.metric == "code":
            code = lookup_solution(q) if right else None
            if code is None:
                code = f"def {q.entry_point or 'solution'}(*args):\n    raise NotImplementedError\n"
                right = False
            return f"Here is the code:\n```python\n{code}```", right
        return ("Yes." if right else "No."), right

    def answer(self, prompt: str) -> str:
        """The answer text for a prompt (a pack question's rendered prompt)."""
        q = self._by_prompt.get(prompt)
        if q is None:
            return f"[{self.name}] a scripted reply (this stand-in answers only the anchor pack's questions)."
        text, right = self._answer(q, self.means_right(q))
        with self._lock:
            self.calls.append(q.id)
            self.intended[q.id] = right
        if self.verbosity:
            text = "… " * self.verbosity + "\n" + text  # no words, so no grader reads anything into it
        return text

    def __call__(self, prompt: str) -> dict[str, Any]:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            fail = self._failures_left > 0
            self._failures_left -= int(fail)
        if fail:
            raise ScriptedRateLimitError("429 Too Many Requests: rate limit reached (scripted)")
        text = self.answer(prompt)
        return {"text": text, "input_tokens": approx_token_count(prompt), "output_tokens": approx_token_count(text)}
