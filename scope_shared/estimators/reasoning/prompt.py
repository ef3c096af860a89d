"""The predictor's prompt: a replaceable template, filled with a target model, question and anchors.

The default template follows the layout the released SCOPE checkpoints were trained on (see
``docs/reasoning.md``): markdown sections ``### Task``, ``### Target Model``, ``Example i:`` blocks
with ``Question:`` / ``Performance: {len: N, correct: yes|no}`` lines, ``### Target Question``,
``### Prediction Requirements``, ``### Output Format (STRICT)``, ``### Important Notes`` and finally
``### Output:``, where generation starts. Anchor questions are given in full (never truncated: the
checkpoint was trained on full questions).

A custom template is any ``str.format`` string using the fields ``{model}``, ``{question}``,
``{examples}`` and ``{n_examples}`` (literal braces doubled).

Question texts (the target's and the anchors', which come from the history and so from users) are
*fenced* (`fence`): a line of a question that would read as the prompt's own structure (a ``#``
heading, ``Example 3:``, ``Question:``, ``Performance:``, ``Predicted Performance``,
``Analysis:``, ``Output Format``) gets a leading backslash, and an inline ``{len:`` becomes
``\\{len:``, so no question can pose as an anchor's result or as the answer format. Ordinary
questions are left exactly as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from scope_shared.errors import EstimatorError

DEFAULT_TEMPLATE = """### Task
You are an expert at predicting the performance of AI models. You are given a target question, \
{n_examples} anchor questions together with the target model's results on them, and the target model. \
Predict the target model's output length and whether its answer will be correct after reasoning.

### Target Model
{model}

{examples}### Target Question
{question}

### Prediction Requirements
1. Analyse the patterns in the target model's results on the anchor questions.
2. Assess how difficult the target question is.
3. Compare the target question with the anchor questions.
4. Predict the target model's output length (in tokens) and correctness on the target question.

### Output Format (STRICT)
Analysis: [your analysis, under 800 words]
Predicted Performance: {{len: [integer], correct: [yes/no]}}

### Important Notes
- Do not wrap "Analysis:" or "Predicted Performance:" in markdown emphasis (no ** or *).
- Keep exactly the output format above.

### Output:
"""

EXAMPLE_TEMPLATE = "Example {i}:\nQuestion: {question}\nPerformance: {{len: {length}, correct: {correct}}}\n\n"
TEMPLATE_FIELDS = ("model", "question", "examples", "n_examples")


@dataclass(frozen=True)
class AnchorExample:
    """One anchor shown to the predictor: its question and the target model's result on it.

    ``length`` is the model's output token count there (None when unknown; shown as ``unknown``).
    """

    question: str
    length: int | None
    correct: bool


def format_length(length: float | int | None) -> str:
    if length is None or (isinstance(length, float) and not math.isfinite(length)):
        return "unknown"
    return str(int(round(float(length))))


_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_MARKER = re.compile(
    r"(?:#|example ?[0-9]+ ?:|question ?:|performance ?:|predicted performance|analysis ?:|output format)", re.I
)
_INLINE = re.compile(r"\{(?=[ \t]{0,8}len[ \t]{0,8}:)", re.I)


def fence(text: str) -> str:
    """Question text that cannot pose as the prompt's structure (see the module docstring)."""
    lines = _LINE_BREAKS.sub("\n", text).split("\n")
    for i, line in enumerate(lines):
        head = line.lstrip(" \t*_`")
        if _MARKER.match(" ".join(head[:40].split())):
            lines[i] = line[: len(line) - len(head)] + "\\" + head
    return _INLINE.sub(r"\\{", "\n".join(lines))


def format_examples(examples: Sequence[AnchorExample]) -> str:
    """The ``Example i:`` blocks, each followed by a blank line."""
    return "".join(
        EXAMPLE_TEMPLATE.format(
            i=i, question=fence(ex.question), length=format_length(ex.length), correct="yes" if ex.correct else "no"
        )
        for i, ex in enumerate(examples, start=1)
    )


def check_template(template: str) -> str:
    """Validate a custom template: it must format with our fields and name the target question."""
    try:
        template.format(model="m", question="q", examples="", n_examples=0)
    except (KeyError, IndexError, ValueError) as exc:
        raise EstimatorError(
            f"prompt template does not format with fields {', '.join(TEMPLATE_FIELDS)}: {exc!r}"
        ) from exc
    if "{question}" not in template or "{model}" not in template:
        raise EstimatorError("prompt template must contain {question} and {model}")
    return template


def build_prompt(
    model: str, question: str, examples: Sequence[AnchorExample], template: str = DEFAULT_TEMPLATE
) -> str:
    """Fill ``template`` for one (target model, target question) pair."""
    return template.format(
        model=" ".join(fence(model).split()), question=fence(question), examples=format_examples(examples),
        n_examples=len(examples),
    )


@dataclass(frozen=True)
class PromptFields:
    """What `parse_prompt` reads back out of a default-layout prompt."""

    model: str
    question: str
    examples: tuple[AnchorExample, ...]


_EXAMPLE_RE = re.compile(
    r"^Example (\d+):\nQuestion: (.*?)\nPerformance: \{len: (\d+|unknown), correct: (yes|no)\}\n\n",
    re.S | re.M,
)


def parse_prompt(prompt: str) -> PromptFields:
    """Read model, question and anchors back from a prompt built with the default template.

    Used to inspect training data and by the round-trip test; raises `EstimatorError` on a prompt
    that does not have the default layout.
    """
    m = re.search(r"### Target Model\n(.*?)\n\n(.*)### Target Question\n(.*)\n\n### Prediction Requirements", prompt, re.S)
    if not m:
        raise EstimatorError("prompt does not follow the default SCOPE layout")
    model, block, question = m.group(1), m.group(2), m.group(3)
    examples = []
    pos = 0
    while pos < len(block):
        e = _EXAMPLE_RE.match(block, pos)
        if not e:
            raise EstimatorError(f"unreadable anchor block at: {block[pos:pos + 60]!r}")
        length = None if e.group(3) == "unknown" else int(e.group(3))
        examples.append(AnchorExample(e.group(2), length, e.group(4) == "yes"))
        pos = e.end()
    return PromptFields(model, question, tuple(examples))
