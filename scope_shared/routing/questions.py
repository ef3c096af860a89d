"""Finding the question inside a prompt that no known template describes.

People write RAG prompts by hand: instructions, retrieved documents and the question in one
message, laid out with labelled sections ("Context:" / "Question:"), markdown headers ("### Context"),
XML tags (``<documents>...</documents><question>...</question>``), numbered search results
("[1] ..."), the question first or last. `find_question` reads that layout, not a list of
templates:

1. Text the run itself retrieved (``retrieved``: what a retriever returned in the same run) is
   context wherever it appears, and labels inside it are not read.
2. Section markers are found: tags and label lines whose name says question (``question``,
   ``query``, ``Q``), context (``context``, ``documents``, ``sources``, ``search results``,
   ``Document 2``, ...) or instructions (``instructions``, ``system``, ``rules``); a trailing answer
   cue ("Answer:", "### Response") ends the prompt. A label is a line of its own or starts one
   ("Question: ..."), so a question's own lines ("Input:", "Note:") are never read as labels.
3. The question is the content of a question tag, else of the last question section (up to the
   next marker; instruction paragraphs after it trimmed; a label that names itself, "Question" or
   "Query", wins over "Q:" or a sentence ending in a colon; a section that already holds its answer,
   a retrieved Q&A pair, is context), else, when the prompt holds context, what is left around the
   context once instruction paragraphs ("Use the documents below...", "You are an assistant...")
   are dropped, a stretch that asks something ("?") first.

A prompt with no context and no question marker is plain: the whole text is the question. A prompt
with context but nothing left beside it has no question (`Found.text` is ``None``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["question", "context", "instruction", "answer"]

# the head noun of a label (its last word, numbers dropped) -> what the section holds
_QUESTION_HEADS = {"question", "query", "q", "inquiry", "user"}
# a label that asks for an answer to what follows ("Now answer this:", "Please answer the following")
_ASKING = re.compile(r"^(?:now |please |so |then )*(?:answer|respond to|reply to)(?: to)? (?:this|the following|it|me)\b", re.I)
_CONTEXT_HEADS = {
    "context", "contexts", "document", "documents", "doc", "docs", "source", "sources", "passage",
    "passages", "excerpt", "excerpts", "snippet", "snippets", "reference", "references", "knowledge",
    "background", "information", "info", "evidence", "facts", "chunk", "chunks", "article", "articles",
    "materials", "material", "corpus",
}
_INSTRUCTION_HEADS = {"instruction", "instructions", "guidelines", "rules", "system", "persona", "role"}
_ANSWER_HEADS = {"answer", "response", "reply", "output", "a", "assistant", "completion"}
_RESULTS = {"results", "result", "hits", "matches"}  # context only with a qualifier ("search results")
_MAX_LABEL_WORDS = 4

_DECOR = r"[ \t]*(?:#{1,6}[ \t]*|>[ \t]*)?(?:\*\*|__|\*)?[ \t]*"
# "Question:", "### Context", "**Sources**", "[Question]", "CONTEXT", "Document 2:", "User question -"
_LABEL_LINE = re.compile(
    r"^(?P<decor>" + _DECOR + r")\[?(?P<label>[A-Za-z][A-Za-z'’ _-]{0,60}?(?:[ \t]*[\[(#]?\d{1,3}[\])]?)?)\]?"
    r"[ \t]*(?:\*\*|__|\*)?[ \t]*(?:(?P<sep>:|：|[ \t]-{1,2}[ \t])(?:\*\*|__|\*)?[ \t]*(?P<rest>.*)|(?P<eol>))$",
    re.MULTILINE,
)
_TAG = re.compile(r"<(?P<name>[A-Za-z][\w.-]{0,40})(?:\s[^<>]*)?>(?P<body>.*?)</(?P=name)\s*>", re.DOTALL)
_ITEM = re.compile(r"^[ \t]*(?:\[\d{1,3}\]|【\d{1,3}】|\(\d{1,3}\)[ \t]+(?=\S{2,}))", re.MULTILINE)
_SEPARATOR = re.compile(r"^[ \t]*(?:[-=*_~#`]{3,}|```\w*)[ \t]*$", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_CONTEXT_WORDS = re.compile(
    r"\b(?:context|documents?|docs|sources?|search results|results (?:above|below)|passages?|excerpts?|snippets?|"
    r"retrieved|references?|information (?:above|below|provided)|provided (?:information|text|material)|"
    r"knowledge base|articles?|the text (?:above|below))\b",
    re.IGNORECASE,
)
_INSTRUCTION_START = re.compile(
    r"^\W*(?:you are|you're|you will|your (?:task|job|role|goal)|use |using |only |do not|don't|never |always |"
    r"if (?:you|the|none|no |there)|cite|keep |be |respond|reply|answer (?:the|this|using|based|only|in|with|concisely|briefly|"
    r"truthfully|as|from|according)|please (?:answer|use|respond|cite|read|be|keep|only)|based (?:on|only)|"
    r"refer |rely |according to the|consult|below (?:is|are)|above (?:is|are)|here (?:is|are)|"
    r"provide |make sure|ensure |think |include |write (?:your|the) answer|format |"
    r"return |output |say |state |thanks|thank you|cheers|regards|best,)",
    re.IGNORECASE,
)

# what a closing line that steers the answer starts with ("Respond in English.", "Thanks!")
_STEERING = re.compile(
    r"^\W*(?:respond|reply|answer (?:in|with|concisely|briefly|truthfully|only)|keep |be |cite|thanks|thank you|"
    r"cheers|regards|please (?:answer|respond|reply|be|keep|cite)|use (?:only|the)|only use|do not|don't|never |"
    r"always |give (?:a|the|your|only)|write (?:a|your|the) (?:short |concise |brief )?answer|put your)",
    re.IGNORECASE,
)

_ASKS = re.compile(r"^\W*(?:which|what|who|whom|whose|how|why|when|where|is|are|does|do|did|can|could|should|would)\b", re.I)


@dataclass(frozen=True)
class Found:
    """What `find_question` found: ``text`` (``None``: the prompt holds context but no question)
    and ``how`` (``"plain"``: no layout, the whole prompt is the question; ``"question tag"``,
    ``"question section"``, ``"beside the context"``; ``"no question"``)."""

    text: str | None
    how: str


@dataclass
class _Marker:
    kind: Kind
    start: int  # where the marker (label line or tag) starts
    body: int  # where its content starts
    end: int | None = None  # tags: where the content ends (the closing tag follows)
    close: int | None = None  # tags: end of the closing tag
    numbered: bool = False
    label_only: bool = False  # the label line has no text after it
    strong: bool = True  # a question marker that names itself ("Question", "<query>"), not "Q" or a sentence


def _head(label: str) -> tuple[str, list[str], bool]:
    words = re.sub(r"[\[\]()#\d_\-]+", " ", label.lower().replace("’", "'")).split()
    numbered = bool(re.search(r"\d", label))
    words = [w[:-2] if w.endswith("'s") else w for w in words]
    return (words[-1] if words else ""), words[:-1], numbered


def classify(label: str) -> Kind | None:
    """What a section label (or tag name) says its section holds, or ``None`` if it names nothing known."""
    head, mods, _ = _head(label)
    if not head:
        return None
    words = {head, *mods}
    if len(mods) + 1 <= 8 and ("question" in words or "query" in words or _ASKING.match(label.strip())):
        return "question"
    if len(mods) + 1 > _MAX_LABEL_WORDS:
        return None
    if head in _QUESTION_HEADS:
        return "question" if head != "q" or not mods else None
    if head in _CONTEXT_HEADS or (head in _RESULTS and mods):
        return "context"
    if head in _INSTRUCTION_HEADS:
        return "instruction"
    if head in _ANSWER_HEADS and (head not in {"a", "output"} or not mods):
        return "answer"
    return None


def _normalised(text: str) -> tuple[str, list[int]]:
    """``text`` with whitespace runs as one space, and each kept character's index in ``text``."""
    out: list[str] = []
    where: list[int] = []
    space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            space = True
            continue
        if space and out:
            out.append(" ")
            where.append(i - 1)
        space = False
        out.append(ch)
        where.append(i)
    return "".join(out), where


def retrieved_spans(text: str, retrieved: Iterable[str], min_chars: int = 24) -> list[tuple[int, int]]:
    """Where retrieved texts occur in ``text`` (whitespace-loose): whole, else line by line."""
    flat, where = _normalised(text)
    spans: list[tuple[int, int]] = []

    def mark(needle: str) -> bool:
        needle = " ".join(needle.split())
        if len(needle) < min_chars:
            return False
        hit = False
        pos = flat.find(needle)
        while pos >= 0:
            spans.append((where[pos], where[pos + len(needle) - 1] + 1))
            hit = True
            pos = flat.find(needle, pos + len(needle))
        return hit

    for doc in retrieved:
        if doc and not mark(doc):
            for line in doc.splitlines():
                mark(line)
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _unmasked(text: str, start: int, end: int, masked: Sequence[tuple[int, int]]) -> str:
    """``text[start:end]`` without the masked spans."""
    out, pos = [], start
    for s, e in masked:
        if e <= pos or s >= end:
            continue
        out.append(text[pos:s])
        pos = max(pos, e)
    out.append(text[pos:end])
    return "".join(out)


def _inside(pos: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(s <= pos < e for s, e in spans)


def _markers(text: str, masked: list[tuple[int, int]]) -> list[_Marker]:
    """Tags and label lines outside the masked spans, in order (tags win over labels inside them)."""
    out: list[_Marker] = []
    tag_spans: list[tuple[int, int]] = []
    for m in _TAG.finditer(text):
        kind = classify(m.group("name"))
        if kind is None or kind == "answer" or _inside(m.start(), masked):
            continue
        if _inside(m.start(), tag_spans):
            continue
        out.append(_Marker(kind, m.start(), m.start("body"), m.end("body"), m.end()))
        tag_spans.append((m.start(), m.end()))
    for m in _LABEL_LINE.finditer(text):
        if _inside(m.start(), masked) or _inside(m.start(), tag_spans):
            continue
        label, sep, rest, decor = m.group("label"), m.group("sep"), m.group("rest") or "", m.group("decor")
        kind = classify(label)
        if kind is None:
            continue
        standalone = not rest.strip()
        # "Context: ..." (a separator), "### Context" / "**Context**" / "CONTEXT" (a line of its own)
        if not sep and not (standalone and (decor.strip() or label.isupper() or label[:1].isupper())):
            continue
        if not sep and kind == "question" and len(label.split()) == 1 and label.lower() == "q":
            continue
        head, mods, numbered = _head(label)
        strong = head in {"question", "query"} and len(mods) < _MAX_LABEL_WORDS
        out.append(_Marker(kind, m.start(), m.start("rest") if sep else m.end(), numbered=numbered,
                           label_only=standalone, strong=strong))
    for m in _ITEM.finditer(text):  # "[1] ...": a numbered search result
        if not _inside(m.start(), masked) and not _inside(m.start(), tag_spans):
            out.append(_Marker("context", m.start(), m.start(), numbered=True))
    out.sort(key=lambda k: k.start)
    return out


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Non-empty paragraphs of ``text[start:end]`` as spans (separator lines are breaks)."""
    chunk = _SEPARATOR.sub(lambda m: "\n" + " " * (len(m.group(0)) - 1) if m.group(0) else "", text[start:end])
    out = []
    pos = 0
    for m in [*_PARAGRAPH_BREAK.finditer(chunk), None]:
        stop = len(chunk) if m is None else m.start()
        piece = chunk[pos:stop]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((start + pos + lead, start + pos + len(piece.rstrip())))
        pos = len(chunk) if m is None else m.end()
    return out


def is_instruction(paragraph: str) -> bool:
    """A paragraph that tells the model how to answer rather than asking something (every line does)."""
    lines = [line for line in paragraph.strip().splitlines() if line.strip()]
    return bool(lines) and all(_instruction_line(line) for line in lines)


def _closing_instruction(paragraph: str) -> bool:
    """An instruction paragraph after a question: one that speaks of the context, or steers the answer."""
    return is_instruction(paragraph) and (bool(_CONTEXT_WORDS.search(paragraph)) or bool(_STEERING.match(paragraph)))


def _instruction_line(line: str) -> bool:
    p = line.strip()
    if p.endswith("?") or _ASKS.match(p):
        return False
    if _INSTRUCTION_START.match(p):
        return True
    return len(p) < 240 and bool(_CONTEXT_WORDS.search(p)) and (
        p.endswith(":") or re.search(r"\b(?:answer|respond|use|using|cite|based)\b", p, re.I) is not None
    )


def _strip_answer_cue(text: str) -> str:
    """``text`` without a trailing answer cue line ("Answer:", "### Response", "A:") or separator."""
    while True:
        lines = text.rstrip().split("\n")
        if len(lines) < 2:
            return text.strip()
        last = lines[-1]
        m = _LABEL_LINE.match(last)
        if _SEPARATOR.fullmatch(last.strip()) or (m and classify(m.group("label")) == "answer" and not (m.group("rest") or "").strip()
                                                    and (m.group("sep") or m.group("decor").strip())):
            text = "\n".join(lines[:-1])
            continue
        return text.strip()


def _question_in_section(text: str, start: int, end: int, masked: list[tuple[int, int]]) -> str | None:
    """The question in a labelled section ``text[start:end]``, kept verbatim: up to any retrieved
    text inside it, without trailing instruction paragraphs (or last lines that speak of the context)
    and a trailing answer cue."""
    for ms, me in masked:
        if ms <= start < me:
            start = me
        elif start < ms < end:
            end = ms
    paras = _paragraphs(text, start, end)
    if not paras:
        return None
    lines = _strip_answer_cue(text[paras[0][0] : paras[-1][1]]).split("\n")
    while len(lines) > 1 and _instruction_line(lines[-1]) and _CONTEXT_WORDS.search(lines[-1]):
        lines.pop()
    body = "\n".join(lines)
    kept = _paragraphs(body, 0, len(body))
    last = len(kept) - 1
    while last > 0 and _closing_instruction(body[kept[last][0] : kept[last][1]]):
        last -= 1
    return _strip_answer_cue(body[: kept[last][1]]) or None


def find_question(text: str, retrieved: Iterable[str] = ()) -> Found:
    """The question inside ``text`` (module docstring); ``retrieved``: texts a retriever returned in
    the same run, which are context wherever they occur."""
    masked = retrieved_spans(text, retrieved)
    markers = _markers(text, masked)
    structural = [k for k in markers if k.kind != "answer"]
    if not masked and not any(k.kind in ("context", "instruction") for k in structural):
        # no context: a question label matters only when there is something before it to drop
        first = next((k for k in structural if k.kind == "question"), None)
        if first is None or not text[: first.start].strip():
            return Found(text, "plain")

    def section_end(i: int) -> int:
        """Where marker ``i``'s section ends: at the next marker (an inline "A: ..." line aside)."""
        k = markers[i]
        if k.end is not None:
            return k.end
        for nxt in markers[i + 1 :]:
            if nxt.start < k.body or (nxt.kind == "answer" and not nxt.label_only):
                continue
            if k.kind == "question" and nxt.kind == "question" and not nxt.strong and not text[k.body : nxt.start].strip():
                continue  # "### Question" then "Q: ...": one question
            return nxt.start
        return len(text)

    tags = [k for k in markers if k.kind == "question" and k.end is not None]
    if tags:
        q = text[tags[-1].body : tags[-1].end].strip()
        if q:
            return Found(q, "question tag")

    starts = [i for i, k in enumerate(markers) if k.kind == "question" and k.end is None]
    if starts and not markers[starts[0]].strong and not _unmasked(text, 0, markers[starts[0]].start, masked).strip():
        markers[starts[0]].body = markers[starts[0]].start  # a prompt that opens with "Q: ..." asks from there
    candidates: list[tuple[bool, int, str]] = []
    for i in starts:
        q = _question_in_section(text, markers[i].body, section_end(i), masked)
        if q and not _answered_inside(q):  # a retrieved Q&A pair is context, not the question
            candidates.append((markers[i].strong, markers[i].start, q))
    # a paragraph after the context that opens with a label of its own ("Respond to: ...",
    # "Customer asks: ...") holds the question, unless a self-naming question label says otherwise
    own = _led_by_own_label(text, markers, masked)
    strong = [q for is_strong, _, q in candidates if is_strong]
    if strong:
        return Found(strong[-1], "question section")
    if own is not None and (not candidates or own[0] > candidates[-1][1]):
        return Found(own[1], "labelled paragraph")
    if candidates:
        return Found(candidates[-1][2], "question section")

    # no question marker: what is left beside context, instructions and labels; first with each
    # context section running to the next marker, then (nothing found) with the last one ending early
    for tight in (False, True):
        found = _beside_context(text, markers, section_end, masked, tight)
        if found:
            asking = [q for q in found if "?" in q]
            return Found((asking or found)[-1], "beside the context")
    # every paragraph left reads like an instruction: the first that does not speak of the context
    found = _beside_context(text, markers, section_end, masked, False, keep_instructions=True)
    plain = [q for q in found if "?" in q or not _CONTEXT_WORDS.search(q)]
    if plain or found:
        return Found((plain or found)[0], "beside the context")
    return Found(None, "no question")


_OWN_LABEL = re.compile(
    r"(?:\A|\n[ \t]*\n|\n[ \t]*[-=]{3,}[ \t]*\n)[ \t]*(?:\*\*)?(?P<label>[A-Z][A-Za-z'’]*(?:[ \t]+[A-Za-z'’]+){0,3})"
    r"(?:\*\*)?:[ \t]+(?P<rest>\S)"
)


def _led_by_own_label(text: str, markers: list[_Marker], masked: list[tuple[int, int]]) -> tuple[int, str] | None:
    """Where and what the question is, after the last context marker, in a paragraph opened by an
    unknown short label ("Respond to: ..."): the last such paragraph, up to the next marker."""
    contexts = [k for k in markers if k.kind == "context"]
    if not contexts:
        return None
    after = max(k.start for k in contexts)
    for m in reversed(list(_OWN_LABEL.finditer(text))):
        if m.start("label") < after:
            break
        if _inside(m.start("label"), masked) or classify(m.group("label")) is not None:
            continue
        end = next((k.start for k in markers if k.start > m.start("rest") and k.kind != "context"), len(text))
        q = _question_in_section(text, m.start("rest"), end, masked)
        return None if q is None else (m.start("label"), q)
    return None


def _beside_context(
    text: str, markers: list[_Marker], section_end: Callable[[int], int], masked: list[tuple[int, int]], tight: bool, keep_instructions: bool = False
) -> list[str]:
    """The text of each stretch outside context, instructions and labels (instruction paragraphs dropped)."""
    covered = list(masked)
    last_context = max((j for j, m in enumerate(markers) if m.kind == "context"), default=-1)
    for i, k in enumerate(markers):
        if k.kind in ("context", "instruction", "question"):  # question sections here held their answers
            end = k.close if k.close is not None else section_end(i)
            if k.kind == "context" and k.end is None:
                end = _context_end(text, k, end, masked, tight and i == last_context)
            covered.append((k.start, end))
        elif k.kind == "answer":
            covered.append((k.start, len(text) if k.label_only and k is markers[-1] else k.body))
    covered = _merge(covered)
    regions: list[tuple[int, int]] = []
    pos = 0
    for s, e in covered:
        if s > pos:
            regions.append((pos, s))
        pos = max(pos, e)
    if pos < len(text):
        regions.append((pos, len(text)))
    found = []
    for s, e in regions:
        paras = [p for p in _paragraphs(text, s, e) if keep_instructions or not is_instruction(text[p[0] : p[1]])]
        if paras:
            body = _strip_answer_cue(text[paras[0][0] : paras[-1][1]])
            if body and not _is_intro(body):
                found.append(body)
    return found


def _context_end(text: str, marker: _Marker, end: int, masked: list[tuple[int, int]], tight: bool) -> int:
    """Where a context section really ends: after the retrieved text inside it when that is known
    (and what follows is not an instruction); ``tight`` (the last section, when nothing was found
    otherwise): a numbered item with its first paragraph, else before a final paragraph that asks."""
    inside = [me for ms, me in masked if marker.body <= ms < end]
    if inside and text[max(inside) : end].strip():
        rest = _paragraphs(text, max(inside), end)
        if rest and not is_instruction(text[rest[0][0] : rest[-1][1]]):
            return max(inside)
    if not tight:
        return end
    paras = _paragraphs(text, marker.body, end)
    if len(paras) < 2:
        return end
    if marker.numbered:
        return paras[0][1]
    for s, e in reversed(paras[1:]):
        if "?" in text[s:e] and not is_instruction(text[s:e]):
            return s
    return end


def _is_intro(text: str) -> bool:
    """A line that only introduces what follows ("Here are the search results:")."""
    t = text.strip()
    return t.endswith(":") and "\n" not in t and len(t) < 200


def _answered_inside(question: str) -> bool:
    """A "question" section that already holds its answer ("Question: ... Answer: Paris"): a
    retrieved FAQ, not the user's question."""
    for m in _LABEL_LINE.finditer(question):
        label = m.group("label")
        if classify(label) == "answer" and _head(label)[0] in {"answer", "a"} and m.group("sep") and (m.group("rest") or "").strip():
            return True
    return False


__all__ = ["Found", "classify", "find_question", "is_instruction", "retrieved_spans"]
