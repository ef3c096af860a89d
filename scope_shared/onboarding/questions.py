"""Anchor questions: what a new model is asked, how it is asked, and what grades the answer.

An `AnchorQuestion` carries the routing text (the text the history holds), its benchmark, the
*metric* that grades answers to it (one of `METRICS`), the reference answer, and, as the metric
needs, the options of a multiple-choice question or the tests of a code question. `render_prompt`
turns it into the message sent to the model: the question's own ``prompt`` if it has one, else a
plain instruction per metric (e.g. "answer with the letter of the option in parentheses").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from scope_shared.errors import AnchorPackError

#: the metrics the built-in graders know (see `scope_shared.onboarding.graders`)
METRICS = ("multiple_choice", "exact_match", "f1", "final_number", "math", "concept_coverage", "code", "judge")

#: other spellings of the metrics (LLMRouter's names among them), mapped to ours
METRIC_ALIASES = {
    "em_mc": "multiple_choice",
    "mc": "multiple_choice",
    "em": "exact_match",
    "f1_score": "f1",
    "gsm8k": "final_number",
    "number": "final_number",
    "math_equivalence": "math",
    "boxed": "math",
    "commongen_coverage": "concept_coverage",
    "coverage": "concept_coverage",
    "code_eval": "code",
    "llm_judge": "judge",
}


def canonical_metric(name: str) -> str:
    """Our name for a metric (case-insensitive; aliases such as ``em_mc`` or ``GSM8K`` accepted)."""
    key = str(name).strip().lower()
    key = METRIC_ALIASES.get(key, key)
    if key not in METRICS:
        raise AnchorPackError(f"unknown metric {name!r}: use one of {', '.join(METRICS)} (or an alias: {', '.join(METRIC_ALIASES)})")
    return key


@dataclass(frozen=True)
class Choices:
    """The options of a multiple-choice question: labels (``A``, ``B``, ... or ``1``, ``2``, ...) and texts."""

    labels: tuple[str, ...]
    texts: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.labels or len(self.labels) != len(self.texts):
            raise AnchorPackError(f"choices need one label per option text, got {len(self.labels)} labels and {len(self.texts)} texts")
        if len(set(self.labels)) != len(self.labels):
            raise AnchorPackError(f"choice labels repeat: {self.labels}")

    @classmethod
    def from_texts(cls, texts: list[str] | tuple[str, ...]) -> "Choices":
        """Options labelled A, B, C, ... in order."""
        return cls(tuple(chr(ord("A") + i) for i in range(len(texts))), tuple(str(t) for t in texts))

    def text_of(self, label: str) -> str | None:
        return self.texts[self.labels.index(label)] if label in self.labels else None


@dataclass(frozen=True)
class AnchorQuestion:
    """One question of an anchor pack (``id`` is its position in the pack and in the pack's history)."""

    id: int
    text: str
    benchmark: str
    metric: str
    reference: str | None = None
    choices: Choices | None = None
    tests: str | None = None
    entry_point: str | None = None
    prompt: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise AnchorPackError(f"question #{self.id}: empty text")
        object.__setattr__(self, "metric", canonical_metric(self.metric))
        if self.metric == "multiple_choice":
            if self.choices is None or self.reference not in self.choices.labels:
                raise AnchorPackError(
                    f"question #{self.id}: a multiple-choice question needs choices and a reference among their labels"
                )
        elif self.metric == "code":
            if not self.tests:
                raise AnchorPackError(f"question #{self.id}: a code question needs tests")
        elif self.metric != "judge" and not self.reference:
            raise AnchorPackError(f"question #{self.id}: metric {self.metric!r} needs a reference answer")

    # ---------------------------------------------------------------- JSON form
    def to_json(self) -> dict[str, Any]:
        """The pack's JSON line for this question (``id`` is implied by the line's position)."""
        d = asdict(self)
        d.pop("id")
        if self.choices is not None:
            d["choices"] = {"labels": list(self.choices.labels), "texts": list(self.choices.texts)}
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_json(cls, qid: int, row: Mapping[str, Any]) -> "AnchorQuestion":
        """Read one JSON line of a pack (see docs/anchor-pack.md); raises `AnchorPackError` if malformed."""
        if not isinstance(row, Mapping):
            raise AnchorPackError(f"question #{qid}: not a JSON object")
        unknown = set(row) - {"text", "benchmark", "metric", "reference", "choices", "tests", "entry_point", "prompt"}
        if unknown:
            raise AnchorPackError(f"question #{qid}: unknown field(s) {', '.join(sorted(unknown))}")
        for key in ("text", "benchmark", "metric"):
            if not isinstance(row.get(key), str):
                raise AnchorPackError(f"question #{qid}: field {key!r} must be a string")
        for key in ("reference", "tests", "entry_point", "prompt"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise AnchorPackError(f"question #{qid}: field {key!r} must be a string")
        choices = row.get("choices")
        if choices is not None:
            if isinstance(choices, list):
                choices = Choices.from_texts([str(c) for c in choices])
            elif isinstance(choices, Mapping) and isinstance(choices.get("labels"), list) and isinstance(choices.get("texts"), list):
                choices = Choices(tuple(map(str, choices["labels"])), tuple(map(str, choices["texts"])))
            else:
                raise AnchorPackError(f"question #{qid}: choices must be a list of texts or {{'labels': [...], 'texts': [...]}}")
        return cls(
            id=qid,
            text=row["text"].strip(),
            benchmark=row["benchmark"],
            metric=row["metric"],
            reference=row.get("reference"),
            choices=choices,
            tests=row.get("tests"),
            entry_point=row.get("entry_point"),
            prompt=row.get("prompt"),
        )


# ---------------------------------------------------------------- prompts
def _options(choices: Choices) -> str:
    return "\n".join(f"({label}) {text}" for label, text in zip(choices.labels, choices.texts))


def render_prompt(q: AnchorQuestion) -> str:
    """The message a model is sent for ``q``: its own ``prompt`` if set, else the metric's template."""
    if q.prompt:
        return q.prompt
    if q.metric == "multiple_choice":
        assert q.choices is not None
        first, last = q.choices.labels[0], q.choices.labels[-1]
        return (
            f"{q.text}\n\nOptions:\n{_options(q.choices)}\n\n"
            f"Answer with the label of the correct option ({first}-{last}) in parentheses, e.g. ({first})."
        )
    if q.metric == "final_number":
        return f"{q.text}\n\nSolve it step by step, then give the final number on the last line as '#### <number>'."
    if q.metric == "math":
        if "\\boxed" in q.text:
            return q.text
        return f"{q.text}\n\nPut your final answer in \\boxed{{...}}."
    if q.metric == "concept_coverage":
        return f"Write a short, natural text (one to three sentences) that uses all of these concepts: {q.text}"
    if q.metric == "code":
        if "def " in q.text:  # a function stub to complete (HumanEval style)
            return (
                "Complete the following Python function. Reply with the whole function in a ```python block.\n\n"
                f"```python\n{q.text}\n```"
            )
        return (
            f"{q.text}\n\nYour code should pass these tests:\n\n{q.tests}\n\n"
            "Reply with the Python code in a ```python block."
        )
    return f"{q.text}\n\nAnswer briefly."
