"""Graders for text answers: multiple choice, exact match, token F1, concept coverage.

Normalisation is the usual one of reading-comprehension benchmarks (SQuAD's): lower case, no
punctuation, no articles (a, an, the), single spaces.
"""

from __future__ import annotations

import re
import string
from collections import Counter

from scope_shared.onboarding.graders.base import Grade, Grader
from scope_shared.onboarding.questions import AnchorQuestion, Choices

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_text(s: str) -> str:
    """Lower case, punctuation and articles removed, whitespace collapsed."""
    return " ".join(_ARTICLES.sub(" ", s.lower().translate(_PUNCT)).split())


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after `normalize_text`."""
    p, r = normalize_text(prediction).split(), normalize_text(reference).split()
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r or common == 0:
        return float(p == r)
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def _contains(haystack: str, needle: str) -> bool:
    """Does the normalised ``needle`` occur in the normalised ``haystack`` as whole words?"""
    n, h = normalize_text(needle), normalize_text(haystack)
    return bool(n) and f" {n} " in f" {h} "


def final_statement(answer: str) -> str:
    """The part after the last "answer is" / "answer:" marker, up to the end of its line; else all."""
    hits = list(re.finditer(r"(?i)\banswer\s*(?:is|:)\s*", answer))
    if not hits:
        return answer.strip()
    return answer[hits[-1].end():].split("\n", 1)[0].strip()


def extract_choice(answer: str, choices: Choices) -> str | None:
    """Which option label an answer names: an explicit "answer is (B)", else the last "(B)", else a
    leading "B." / "B)", else the one option whose text the answer states. None if it names none."""
    alt = "|".join(re.escape(label) for label in sorted(choices.labels, key=len, reverse=True))
    explicit = list(re.finditer(rf"(?i:answer|option|choice)\s*(?:is|:)?\s*[:\-]?\s*[\(\[]?\s*({alt})\s*[\)\]]?(?!\w)", answer))
    if explicit:
        return explicit[-1].group(1)
    parenthesised = re.findall(rf"[\(\[]\s*({alt})\s*[\)\]]", answer)
    if parenthesised:
        return parenthesised[-1]
    leading = re.match(rf"\s*\**\s*({alt})\s*(?:[\).:\]*]|$|\s)", answer)
    if leading:
        return leading.group(1)
    said = final_statement(answer)
    exact = [lab for lab, text in zip(choices.labels, choices.texts) if normalize_text(text) == normalize_text(said)]
    if len(exact) == 1:
        return exact[0]
    named = [lab for lab, text in zip(choices.labels, choices.texts) if _contains(said, text)]
    return named[0] if len(named) == 1 else None


class MultipleChoiceGrader(Grader):
    """1 if the answer names the reference option (by its label or by its text), else 0."""

    metric = "multiple_choice"

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        assert question.choices is not None
        got = extract_choice(answer, question.choices)
        if got is None:
            return Grade(0.0, None, "no option named")
        return Grade(float(got == question.reference), got, f"chose ({got}), reference ({question.reference})")


class ExactMatchGrader(Grader):
    """1 if the normalised answer (or its final "answer is ..." statement) equals the normalised reference."""

    metric = "exact_match"

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        ref = normalize_text(question.reference or "")
        said = final_statement(answer)
        ok = ref in (normalize_text(answer), normalize_text(said))
        return Grade(float(ok), said, "exact match" if ok else "no exact match")


class F1Grader(Grader):
    """Token F1 between answer and reference; 1 when the reference appears whole in the answer.

    The containment rule (``containment=True``, the default) keeps a correct but wordy answer
    ("The song was sung by Sammy Davis Jr.") from being scored by its precision.
    """

    metric = "f1"

    def __init__(self, containment: bool = True) -> None:
        self.containment = containment

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        ref = question.reference or ""
        if self.containment and _contains(answer, ref):
            return Grade(1.0, ref, "reference contained in the answer")
        said = final_statement(answer)
        f1 = max(token_f1(answer, ref), token_f1(said, ref))
        return Grade(f1, said, f"token F1 {f1:.3f}")


_SUFFIXES = ("", "s", "es", "d", "ed", "ing", "er", "ers", "ies", "ied")


def _covers(word: str, concept: str) -> bool:
    """``word`` is ``concept`` or a regular inflection of it (dog -> dogs, drive -> driving,
    stop -> stopped, carry -> carried); irregular forms (drive -> drove) are not caught."""
    stems = {concept, concept + concept[-1:]}  # doubled final consonant: stop -> stopp-ed
    if len(concept) > 3 and concept[-1] in "ey":
        stems.add(concept[:-1])
    return any(word == s + suffix for s in stems for suffix in _SUFFIXES)


class ConceptCoverageGrader(Grader):
    """CommonGen: the share of the reference's comma-separated concepts the answer uses (inflections count)."""

    metric = "concept_coverage"

    def grade(self, answer: str, question: AnchorQuestion) -> Grade:
        concepts = [c.strip().lower() for c in (question.reference or "").split(",") if c.strip()]
        words = set(re.findall(r"[a-z]+", answer.lower()))
        missing = [c for c in concepts if not any(_covers(w, c) for w in words)]
        score = 1 - len(missing) / len(concepts) if concepts else 0.0
        return Grade(score, None, f"{len(concepts) - len(missing)}/{len(concepts)} concepts" + (f"; missing {', '.join(missing[:5])}" if missing else ""))
