"""LlamaIndex's own prompt templates, read from the installed ``llama_index.core``, as SCOPE scaffolds.

Every template in LlamaIndex's prompt modules that has a question field (``query_str``, ...): the
text-QA, refine, tree-summarize and their chat and rich ("content") forms, the selectors',
condense-question chat engines', sub-question and text-to-SQL prompts, and more; the user turn
of a chat template that follows the question turn without a question of its own (a refine step)
as scaffolding; and the JSON schema that structured-output programs paste into a prompt.
`scaffolds_from_prompt` does the same for the user's own templates.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.prompts import ChatPromptTemplate, PromptTemplate, RichPromptTemplate
from llama_index.core.prompts.base import BasePromptTemplate, SelectorPromptTemplate

from scope_shared.routing.scaffolds import QUESTION_FIELDS, Scaffold, ScaffoldSet, chat_scaffolds

#: modules of ``llama_index.core`` whose prompt templates (objects and ``*_TMPL`` strings) are read
PROMPT_MODULES: tuple[str, ...] = (
    "llama_index.core.prompts.default_prompts",
    "llama_index.core.prompts.chat_prompts",
    "llama_index.core.selectors.prompts",
    "llama_index.core.chat_engine.condense_question",
    "llama_index.core.chat_engine.condense_plus_context",
    "llama_index.core.question_gen.prompts",
    "llama_index.core.indices.query.query_transform.prompts",
    "llama_index.core.response_synthesizers.refine",
)
#: (module, attribute) of instruction blocks pasted into prompts (structured-output programs)
BLOCKS: tuple[tuple[str, str], ...] = (
    ("llama_index.core.output_parsers.pydantic", "PYDANTIC_FORMAT_TMPL"),
    ("llama_index.core.output_parsers.selection", "FORMAT_STR"),
)
_CHAT_BLOCK = re.compile(r"\{%\s*chat\s+role\s*=\s*[\"'](\w+)[\"']\s*%\}(.*?)\{%\s*endchat\s*%\}", re.DOTALL)


def _user_templates(prompt: BasePromptTemplate) -> list[tuple[str, Any]]:
    """(template text, syntax) of each user turn of a chat or rich prompt, in order."""
    if isinstance(prompt, ChatPromptTemplate):
        return [
            (m.content or "", "f-string")
            for m in prompt.message_templates
            if isinstance(m, ChatMessage) and m.role == MessageRole.USER
        ]
    if isinstance(prompt, RichPromptTemplate):
        blocks = _CHAT_BLOCK.findall(prompt.template_str)
        if not blocks:
            return [(prompt.template_str, "jinja2")]
        return [(body, "jinja2") for role, body in blocks if role == "user"]
    return []


def scaffolds_from_prompt(
    prompt: BasePromptTemplate | str, name: str | None = None, question: str | Sequence[str] | None = None
) -> list[Scaffold]:
    """Scaffolds for one LlamaIndex prompt template (or template string); ``question`` names the
    question variable(s) (default `QUESTION_FIELDS`: ``query_str``, ``question``, ...)."""
    fields = QUESTION_FIELDS if question is None else ((question,) if isinstance(question, str) else tuple(question))
    label = name or "prompt"
    if isinstance(prompt, str):
        prompt = PromptTemplate(prompt)
    if isinstance(prompt, SelectorPromptTemplate):
        out = scaffolds_from_prompt(prompt.default_template, f"{label}.default", question)
        for i, (_cond, p) in enumerate(prompt.conditionals or []):
            out.extend(scaffolds_from_prompt(p, f"{label}.conditional[{i}]", question))
        return out
    if isinstance(prompt, PromptTemplate):
        s = Scaffold.from_template(label, prompt.template, question_fields=fields)
        return [s] if s else []
    return chat_scaffolds(label, _user_templates(prompt), fields)


def _module(path: str) -> Any:
    try:
        return importlib.import_module(path)
    except ImportError:
        return None


def _module_templates(path: str) -> Iterable[tuple[str, BasePromptTemplate | str]]:
    mod = _module(path)
    for attr, value in vars(mod).items() if mod is not None else ():
        if isinstance(value, BasePromptTemplate) or (isinstance(value, str) and attr.endswith(("_TMPL", "_TEMPLATE"))):
            yield f"{path}.{attr}", value


@lru_cache(maxsize=1)
def llamaindex_scaffolds() -> ScaffoldSet:
    """Every LlamaIndex template this install has that SCOPE recognises (built once)."""
    out: list[Scaffold | None] = []
    for path in PROMPT_MODULES:
        for name, prompt in _module_templates(path):
            try:
                out.extend(scaffolds_from_prompt(prompt, name))
            except (ValueError, KeyError, TypeError):  # a template we cannot parse is simply not recognised
                continue
    for module, attr in BLOCKS:
        text = getattr(_module(module), attr, None)
        if isinstance(text, str):
            out.append(Scaffold.from_template(f"{module}.{attr}", text, kind="block"))
    return ScaffoldSet(out)
