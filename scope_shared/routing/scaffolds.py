"""Known prompt templates ("scaffolds"), compiled to patterns that find the question inside a filled-in prompt.

A framework's prompt template is literal scaffolding around fields (``{context_str}``,
``{query_str}``). Compiled, it matches a prompt made from it and says which part was the user's
question, so the router can route on that instead of on retrieved context and instructions:

    qa = Scaffold.from_template("text QA", "Context:\\n{context_str}\\nQuery: {query_str}\\nAnswer: ")
    ScaffoldSet([qa]).extract("Context:\\n...retrieved...\\nQuery: What is 2+2?\\nAnswer: ").text  # 'What is 2+2?'

Three kinds:

- ``message``: a whole prompt (or chat message) made from the template; its question field (one of
  `QUESTION_FIELDS`) is the routing text.
- ``scaffold``: a whole message with no question at all, e.g. the "refine the answer with this new
  context" turn of a refine chain; the question is in an earlier turn.
- ``block``: instructions pasted into a prompt (a JSON schema to follow); removed wherever found.

Literal text matches loosely on whitespace (rendering strips and re-flows it). Fields before the
question take as much as they can, so retrieved text that repeats the template's own labels
("Question:") stays context; the question and later fields take as little as they can. The templates themselves are read
from the installed frameworks by the integrations (`langchain_scope.templates`,
`llamaindex_scope.templates`); this module knows no framework.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

#: template fields that hold the user's question, in order of preference
QUESTION_FIELDS: tuple[str, ...] = ("query_str", "question", "query", "input", "user_input")

Kind = Literal["message", "scaffold", "block"]
Syntax = Literal["f-string", "mustache", "jinja2"]

#: literal characters a template needs before it is worth matching (``"{question}"`` alone matches anything)
MIN_LITERAL_CHARS = 16
_PREFILTER_CHARS = 12  # literal runs at least this long must occur in a text before the regex runs
_JINJA = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)[^}]*\}\}|\{%-?\s*for\b.*?%\}.*\{%-?\s*endfor\s*-?%\}|\{%.*?%\}", re.DOTALL)
_WORDS = re.compile(r"\S+")


def _segments(template: str, syntax: Syntax) -> list[tuple[str, str]]:
    """``[("lit", text) | ("field", name)]`` for a template (a jinja loop becomes an anonymous field)."""
    out: list[tuple[str, str]] = []
    if syntax == "f-string":
        for literal, field, _spec, _conv in string.Formatter().parse(template):
            if literal:
                out.append(("lit", literal))
            if field is not None:
                out.append(("field", field.split(".")[0].split("[")[0] or "_"))
        return out
    pos = 0
    for m in _JINJA.finditer(template):
        if m.start() > pos:
            out.append(("lit", template[pos : m.start()]))
        if m.group(1):
            out.append(("field", m.group(1)))
        elif m.group(0).lstrip("{%- ").startswith("for"):
            out.append(("field", "_"))
        pos = m.end()
    if pos < len(template):
        out.append(("lit", template[pos:]))
    return out


def _literal_regex(text: str) -> str:
    """A literal, escaped, with every whitespace run matching any (or no) whitespace."""
    return r"\s*".join(re.escape(w) for w in _WORDS.findall(text)) if text.strip() else ""


@dataclass(frozen=True)
class Scaffold:
    """One compiled template. Build with `Scaffold.from_template`."""

    name: str
    kind: Kind
    pattern: re.Pattern[str]
    question: str | None  # the regex group holding the question (``message`` kind only)
    needles: tuple[str, ...]  # long literal runs that must all occur in a matching text

    @classmethod
    def from_template(
        cls,
        name: str,
        template: str,
        *,
        kind: Kind | None = None,
        syntax: Syntax = "f-string",
        question_fields: Sequence[str] = QUESTION_FIELDS,
    ) -> "Scaffold | None":
        """Compile ``template``; ``None`` when it cannot tell a question from scaffolding.

        ``kind`` defaults to ``message`` when a field is one of ``question_fields`` (else the
        template is not usable unless ``kind`` says ``scaffold`` or ``block``). ``None`` is also
        returned for templates with too little literal text to be recognised safely.
        """
        segs = _segments(template, syntax)
        fields = [v for k, v in segs if k == "field"]
        question = next((f for f in question_fields if f in fields), None)
        kind = kind or ("message" if question else None)
        if kind is None or (kind == "message" and question is None):
            return None
        literal = "".join(v for k, v in segs if k == "lit")
        if len("".join(literal.split())) < MIN_LITERAL_CHARS:
            return None
        parts: list[str] = []
        last = "lit"
        has_q = False
        for k, v in segs:
            if k == "lit":
                parts.append(_literal_regex(v))
            elif last != "field":  # two fields in a row are one stretch of text
                if kind == "message" and v == question and not has_q:
                    parts.append(r"(?P<q>.+?)")
                    has_q = True
                else:  # before the question, greedy: retrieved text may repeat the template's own labels
                    parts.append(r".*" if kind == "message" and not has_q else r".*?")
            last = k
        body = r"\s*".join(p for p in parts if p)
        pattern = re.compile(body if kind == "block" else r"\A\s*" + body + r"\s*\Z", re.DOTALL)
        needles = _needles(v for k, v in segs if k == "lit" and len(v.strip()) >= _PREFILTER_CHARS)
        return cls(name, kind, pattern, "q" if kind == "message" else None, needles)

    def could_match(self, text: str) -> bool:
        """Cheap test before the regex: a word of every long literal run occurs in ``text``."""
        return all(n in text for n in self.needles)


def _needles(literals: Iterable[str]) -> tuple[str, ...]:
    """The longest word of each long literal run: survives re-flowed whitespace, still specific."""
    out = []
    for lit in literals:
        word = max(lit.split(), key=lambda w: (sum(c.isalnum() for c in w), len(w)), default="")
        if len(word) >= 6:
            out.append(word)
    return tuple(dict.fromkeys(out))


def template_fields(template: str, syntax: Syntax = "f-string") -> set[str]:
    """The field names of a template."""
    return {v for k, v in _segments(template, syntax) if k == "field"}


def chat_scaffolds(
    label: str, user_turns: Sequence[tuple[str, Syntax]], question_fields: Sequence[str] = QUESTION_FIELDS
) -> list[Scaffold]:
    """Scaffolds for the user turns of a chat template, in order, as ``(template, syntax)``.

    A turn with a question field is a ``message``; a later turn without one (a refine step's "here
    is new context" turn) is ``scaffold``: the question is in the earlier turn.
    """
    out: list[Scaffold] = []
    seen_question = False
    for i, (text, syntax) in enumerate(user_turns):
        has_question = bool(template_fields(text, syntax) & set(question_fields))
        kind: Kind | None = None if has_question or not seen_question else "scaffold"
        s = Scaffold.from_template(f"{label}[{i}]", text, kind=kind, syntax=syntax, question_fields=question_fields)
        if s is not None:
            out.append(s)
        seen_question = seen_question or has_question
    return out


@dataclass(frozen=True)
class Extraction:
    """What a text holds: ``text`` is the question (``None``: pure scaffolding); ``template`` names the match."""

    text: str | None
    template: str | None = None


class ScaffoldSet:
    """A collection of scaffolds; `extract` finds the question in a text (immutable, thread-safe)."""

    def __init__(self, scaffolds: Iterable[Scaffold | None] = ()) -> None:
        unique: dict[str, Scaffold] = {}
        for s in scaffolds:
            if s is not None:
                unique.setdefault(s.pattern.pattern, s)
        # most specific (most literal text) first, so a template never shadows a longer one
        ordered = sorted(unique.values(), key=lambda s: -len(s.pattern.pattern))
        self.blocks: tuple[Scaffold, ...] = tuple(s for s in ordered if s.kind == "block")
        self.wholes: tuple[Scaffold, ...] = tuple(s for s in ordered if s.kind != "block")

    def __len__(self) -> int:
        return len(self.blocks) + len(self.wholes)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((*self.wholes, *self.blocks))

    def __add__(self, other: "ScaffoldSet | Iterable[Scaffold | None]") -> "ScaffoldSet":
        return ScaffoldSet([*self, *other])

    def names(self) -> list[str]:
        return [s.name for s in self]

    def strip_blocks(self, text: str) -> tuple[str, list[str]]:
        """``text`` without any pasted instruction blocks, and the names of those removed."""
        removed: list[str] = []
        for block in self.blocks:
            if block.could_match(text):
                new = block.pattern.sub("\n", text)
                if new != text:
                    text = new
                    removed.append(block.name)
        return (text.strip() if removed else text), removed

    def extract(self, text: str) -> Extraction:
        """The question inside ``text`` (blocks removed, then the first whole template that matches)."""
        text, removed = self.strip_blocks(text)
        for s in self.wholes:
            if not s.could_match(text):
                continue
            m = s.pattern.match(text)
            if m is None:
                continue
            if s.kind == "scaffold":
                return Extraction(None, s.name)
            question = self.strip_blocks(m.group("q"))[0].strip()
            if question:
                return Extraction(question, s.name)
        return Extraction(text.strip() if removed else text, removed[0] if removed else None)
