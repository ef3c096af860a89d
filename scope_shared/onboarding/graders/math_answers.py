"""Graders for mathematical answers: a final number (GSM8K style) and a boxed answer (MATH style).

Numbers compare as numbers ("20,000", "$20000.00" and "20000" are equal); MATH answers compare
after the usual LaTeX normalisation (``\\dfrac`` -> ``\\frac``, no ``\\left``/``\\right``, units in
``\\text{}`` dropped, ``\\frac12`` -> ``\\frac{1}{2}``, ``a/b`` -> ``\\frac{a}{b}``, ...) or, when both
sides are numbers or simple fractions, numerically.
"""

from __future__ import annotations

import re
from fractions import Fraction

from scope_shared.onboarding.graders.base import Grade, Grader
from scope_shared.onboarding.questions import AnchorQuestion

_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def parse_number(s: str) -> float | None:
    """A plain number ("1,234.5", "$20", "-3", "7.") as a float; None if it is not one."""
    t = s.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        return float(t)
    except ValueError:
        return None


def gsm8k_reference(solution: str) -> str:
    """The final number of a GSM8K reference solution (after its ``####``)."""
    tail = solution.split("####")[-1]
    return tail.strip().replace(",", "").replace("$", "")


def final_number(answer: str) -> str | None:
    """The number an answer ends on: after its last ``####``, else after its last "answer is",
    else the last number in it."""
    for marker in ("####", "answer is", "answer:"):
        pos = answer.lower().rfind(marker)
        if pos >= 0:
            found = _NUMBER.findall(answer[pos + len(marker):])
            if found:
                return found[0].strip()
    found = _NUMBER.findall(answer)
    return found[-1].strip() if found else None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


class FinalNumberGrader(Grader):
    """1 if the answer's final number equals the reference number, else 0."""

    metric = "final_number"

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        got = final_number(answer)
        ref = parse_number(question.reference or "")
        value = None if got is None else parse_number(got)
        if value is None or ref is None:
            return Grade(0.0, got, "no final number" if got is None else "reference is not a number")
        return Grade(float(_close(value, ref)), got, f"final number {got}, reference {question.reference}")


# ---------------------------------------------------------------- MATH
def _braced(s: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at ``s[start]`` and the index after it."""
    depth = 0
    for i in range(start, len(s)):
        if s[i] == "{":
            depth += 1
        elif s[i] == "}":
            depth -= 1
            if depth == 0:
                return s[start + 1:i], i + 1
    return None


def final_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, ``\\boxed 5``) in ``text``."""
    pos = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if pos < 0:
        return None
    rest = text[pos:]
    head = 6 if rest.startswith("\\boxed") else 5
    after = rest[head:]
    if after.startswith(" ") and not after.lstrip().startswith("{"):
        return after.strip().split("$")[0].split()[0] if after.strip() else None
    brace = rest.find("{", head)
    if brace < 0:
        return None
    group = _braced(rest, brace)
    return group[0].strip() if group else None


def stated_answer(answer: str) -> str | None:
    """The final answer of a reply: its last boxed expression, else what follows "final answer is"."""
    boxed = final_boxed(answer)
    if boxed is not None:
        return boxed
    hits = list(re.finditer(r"(?i)(?:final answer|answer)\s*(?:is|:)\s*", answer))
    if not hits:
        return None
    said = answer[hits[-1].end():].split("\n", 1)[0].strip()
    return said.strip("$ ").rstrip(".").strip("$ ") or None


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{b}`` -> ``\\frac{1}{b}``."""
    out, parts = [], s.split("\\frac")
    out.append(parts[0])
    for part in parts[1:]:
        if part.startswith("{"):
            g = _braced(part, 0)
            if g is not None and len(part) > g[1] and part[g[1]] != "{":
                num, rest = g[0], part[g[1]:]
                part = "{" + num + "}{" + rest[0] + "}" + rest[1:]
        elif len(part) >= 2:
            first, second = part[0], part[1]
            part = "{" + first + "}" + (second if second == "{" else "{" + second + "}") + part[2:]
        out.append("\\frac" + part)
    return "".join(out)


def normalize_math(s: str) -> str:
    """A canonical string for a MATH answer (see the module doc)."""
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm)\{\s*([^{}]*)\}", r"\\text{\1}", s)
    whole = re.fullmatch(r"\\text\{([^{}]*)\}", s)
    if whole:
        s = whole.group(1)
    s = re.sub(r"\s*\\text\{\s*[a-zA-Z ]*\}\s*$", "", s)  # trailing units: "5 \text{ cm}"
    for old, new in (("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", ""),
                     ("\\displaystyle", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\%", ""), ("%", ""),
                     ("\\$", ""), ("$", ""), ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\:", ""), ("\\ ", "")):
        s = s.replace(old, new)
    s = s.replace(" ", "").rstrip(".")
    if re.fullmatch(r"[a-zA-Z]\w?=.+", s):  # "x=5" -> "5"
        s = s.split("=", 1)[1]
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):  # 1,000 -> 1000
        s = s.replace(",", "")
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = _fix_fracs(s)
    frac = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if frac:
        s = f"\\frac{{{frac.group(1)}}}{{{frac.group(2)}}}"
    if s.startswith("."):
        s = "0" + s
    return s


def _as_number(s: str) -> float | None:
    """A normalised answer that is a number or a simple fraction, as a float."""
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}", s)
    if m:
        value = Fraction(int(m.group(2)), int(m.group(3))) if int(m.group(3)) else None
        return None if value is None else float(-value if m.group(1) else value)
    return parse_number(s) if re.fullmatch(r"-?[\d.,]+", s) else None


def math_equivalent(a: str, b: str) -> bool:
    """Are two MATH answers the same after normalisation (or equal as numbers)?"""
    na, nb = normalize_math(a), normalize_math(b)
    if na == nb:
        return True
    x, y = _as_number(na), _as_number(nb)
    return x is not None and y is not None and _close(x, y)


class MathGrader(Grader):
    """1 if the answer's boxed (or stated final) answer is equivalent to the reference, else 0."""

    metric = "math"

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        got = stated_answer(answer)
        if got is None:
            return Grade(0.0, None, "no boxed or stated final answer")
        ok = math_equivalent(got, question.reference or "")
        return Grade(float(ok), got, f"answer {got!r}, reference {question.reference!r}")
