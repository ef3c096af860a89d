"""Strict parsing of the predictor's answer.

The answer ends with ``Predicted Performance: {len: <integer>, correct: <yes|no>}``. We read the
*last* line that carries that label (an analysis may quote anchors' ``len:`` values, and the public
inference code's "first ``len:`` anywhere" rule then reads an anchor's length), after stripping
markdown emphasis (``**``, ``__``, ``*``, backticks) that models like to add. Anything else raises
`PredictionParseError` naming what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scope_shared.errors import EstimatorError

LABEL = "Predicted Performance:"
_EMPHASIS = re.compile(r"\*\*|__|\*|`")
_LABEL_RE = re.compile(r"predicted\s+performance\s*:", re.I)
_PRED_RE = re.compile(
    r"predicted\s+performance\s*:\s*\{?\s*len\s*:\s*(?P<len>[0-9][0-9,]*)\s*(?:tokens?)?\s*,\s*"
    r"correct\s*:\s*(?P<correct>yes|no)\s*\}?\s*\.?\s*$",
    re.I,
)
_SLOT_RE = re.compile(r"correct[\s*_`]*:", re.I)
_ANALYSIS_RE = re.compile(r"^\s*analysis\s*:\s*", re.I | re.M)


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


def parse_prediction(text: str) -> ParsedPrediction:
    """Parse one answer; raise `PredictionParseError` if it is malformed."""
    if not isinstance(text, str) or not text.strip():
        raise PredictionParseError("empty answer")
    lines = text.splitlines(keepends=True)
    idx = [i for i, line in enumerate(lines) if _LABEL_RE.search(strip_emphasis(line))]
    if not idx:
        raise PredictionParseError(f"no {LABEL!r} line in the answer (ends with {text[-80:]!r})")
    last = idx[-1]
    raw_line = lines[last]
    clean = strip_emphasis(raw_line).strip()
    start = _LABEL_RE.search(clean)
    assert start is not None
    m = _PRED_RE.match(clean[start.start():])
    if not m:
        raise PredictionParseError(
            f"malformed prediction line {clean!r}; expected '{LABEL} {{len: <integer>, correct: <yes|no>}}'"
        )
    length = int(m.group("len").replace(",", ""))
    correct = m.group("correct").lower() == "yes"
    head = "".join(lines[:last])
    before_label = strip_emphasis(raw_line[: _label_start(raw_line)]).strip()
    body = strip_emphasis(head) + (before_label if before_label else "")
    a = list(_ANALYSIS_RE.finditer(body))
    analysis = body[a[0].end():] if a else body
    slots = list(_SLOT_RE.finditer(raw_line))
    if not slots:  # pragma: no cover - the line matched _PRED_RE, so a slot exists
        raise PredictionParseError("no 'correct:' slot on the prediction line")
    return ParsedPrediction(length, correct, analysis.strip(), head + raw_line[: slots[-1].end()])


def _label_start(raw_line: str) -> int:
    """Index in the raw line where the label starts (emphasis markers before it excluded)."""
    m = re.search(r"[*_`]*\s*predicted", raw_line, re.I)
    return m.start() if m else 0
