"""Strict parsing of the predictor's answer, in linear time.

The answer ends with ``Predicted Performance: {len: <integer>, correct: <yes|no>}``. We read the
*last* line that carries that label (an analysis may quote anchors' ``len:`` values, and the public
inference code's "first ``len:`` anywhere" rule then reads an anchor's length), after stripping
markdown emphasis (``**``, ``__``, ``*``, backticks) that models like to add. Anything else raises
`PredictionParseError` naming what is wrong, and so does an absurd length (more than
``MAX_PREDICTED_TOKENS``, or a number with thousands of digits): the estimator asks again, then
falls back.

The answer is model output, so it is untrusted: every pattern here runs on one line whose
whitespace runs were collapsed first, and no pattern has two adjacent unbounded quantifiers, so
parsing takes time linear in the answer's length (a 40 KB answer of ``*`` once took 18 s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scope_shared.errors import EstimatorError

LABEL = "Predicted Performance:"
#: a predicted output length above this is not a prediction
MAX_PREDICTED_TOKENS = 1_000_000
_EMPHASIS = re.compile(r"\*\*|__|\*|`")
_LABEL_RE = re.compile(r"predicted performance ?:", re.I)
_PRED_RE = re.compile(
    r"predicted performance ?: ?\{? ?len ?: ?(?P<len>[0-9][0-9,]{0,15}) ?(?:tokens?)? ?, ?"
    r"correct ?: ?(?P<correct>yes|no) ?\}? ?\.? ?$",
    re.I,
)
_SLOT_RE = re.compile(r"correct[\s*_`]*:", re.I)


class PredictionParseError(EstimatorError):
    """The predictor's answer has no well-formed ``Predicted Performance:`` line."""


@dataclass(frozen=True)
class ParsedPrediction:
    """A parsed answer: predicted output tokens, predicted correctness, and the analysis text.

    ``slot_prefix`` is the raw answer up to and including the colon after ``correct`` on the
    prediction line: backends score the continuations `` yes`` / `` no`` after it.
    """

    length: int
    correct: bool
    analysis: str
    slot_prefix: str


def strip_emphasis(text: str) -> str:
    return _EMPHASIS.sub("", text)


def _clean(line: str) -> str:
    """A line without emphasis, its whitespace runs collapsed to single spaces."""
    return " ".join(strip_emphasis(line).split())


def _after_analysis_label(body: str) -> str:
    """The text after the first line that starts with ``Analysis:`` (all of it if there is none)."""
    pos = 0
    for line in body.splitlines(keepends=True):
        head = line.lstrip()
        if head[:8].lower() == "analysis" and head[8:].lstrip(" \t").startswith(":"):
            rest = head[8:].lstrip(" \t")[1:]
            return rest + body[pos + len(line):]
        pos += len(line)
    return body


def parse_prediction(text: str) -> ParsedPrediction:
    """Parse one answer; raise `PredictionParseError` if it is malformed."""
    if not isinstance(text, str) or not text.strip():
        raise PredictionParseError("empty answer")
    lines = text.splitlines(keepends=True)
    last, clean = -1, ""
    for i in range(len(lines) - 1, -1, -1):
        c = _clean(lines[i])
        if _LABEL_RE.search(c):
            last, clean = i, c
            break
    if last < 0:
        raise PredictionParseError(f"no {LABEL!r} line in the answer (ends with {text[-80:]!r})")
    raw_line = lines[last]
    start = _LABEL_RE.search(clean)
    assert start is not None
    m = _PRED_RE.match(clean, start.start())
    if not m:
        raise PredictionParseError(
            f"malformed prediction line {clean[:200]!r}; expected '{LABEL} {{len: <integer>, correct: <yes|no>}}'"
        )
    digits = m.group("len").replace(",", "")
    length = int(digits) if digits else -1
    if not 0 <= length <= MAX_PREDICTED_TOKENS:
        raise PredictionParseError(f"predicted length {m.group('len')[:20]!r} is not a plausible token count")
    correct = m.group("correct").lower() == "yes"
    head = "".join(lines[:last])
    before_label = clean[: start.start()].strip()
    body = strip_emphasis(head) + before_label
    analysis = _after_analysis_label(body)
    slots = list(_SLOT_RE.finditer(raw_line))
    if not slots:  # emphasis inside the word "correct": the clean line matched, the raw one does not
        raise PredictionParseError("no 'correct:' slot on the raw prediction line")
    return ParsedPrediction(length, correct, analysis.strip(), head + raw_line[: slots[-1].end()])
