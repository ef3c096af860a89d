"""LangChain's own prompt templates, read from the installed packages, as SCOPE scaffolds.

The question-answering chains' prompts (stuff, map-reduce, refine, map-rerank, QA with sources,
conversational retrieval's condense-question) from ``langchain_classic`` (or the pre-1.0
``langchain``) when installed, and the output parsers' format instructions from
``langchain_core``. `scaffolds_from_prompt` turns any LangChain prompt template, the user's own
included, into scaffolds: ``SCOPERouter(..., templates=[my_rag_prompt])``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from langchain_core.prompts import BasePromptTemplate, ChatPromptTemplate, PromptTemplate
from langchain_core.prompts.chat import HumanMessagePromptTemplate

from scope_shared.routing.scaffolds import QUESTION_FIELDS, Scaffold, ScaffoldSet, chat_scaffolds

#: modules (under ``langchain_classic.`` or ``langchain.``) whose prompt templates are recognised
QA_MODULES: tuple[str, ...] = (
    "chains.question_answering.stuff_prompt",
    "chains.question_answering.map_reduce_prompt",
    "chains.question_answering.refine_prompts",
    "chains.question_answering.map_rerank_prompt",
    "chains.qa_with_sources.stuff_prompt",
    "chains.qa_with_sources.map_reduce_prompt",
    "chains.qa_with_sources.refine_prompts",
    "chains.retrieval_qa.prompt",
    "chains.conversational_retrieval.prompts",
)
#: (module, attribute) of format instructions that output parsers paste into prompts
FORMAT_INSTRUCTIONS: tuple[tuple[str, str], ...] = (
    ("langchain_core.output_parsers.format_instructions", "JSON_FORMAT_INSTRUCTIONS"),
    ("langchain_core.output_parsers.pydantic", "_PYDANTIC_FORMAT_INSTRUCTIONS"),
    ("langchain_classic.output_parsers.format_instructions", "PYDANTIC_FORMAT_INSTRUCTIONS"),
    ("langchain_classic.output_parsers.format_instructions", "YAML_FORMAT_INSTRUCTIONS"),
)


def _syntax(prompt: PromptTemplate) -> Any:
    return {"f-string": "f-string", "mustache": "mustache", "jinja2": "jinja2"}.get(prompt.template_format, "f-string")


def _human_templates(prompt: ChatPromptTemplate) -> list[PromptTemplate]:
    out = []
    for m in prompt.messages:
        if isinstance(m, HumanMessagePromptTemplate) and isinstance(m.prompt, PromptTemplate):
            out.append(m.prompt)
    return out


def scaffolds_from_prompt(
    prompt: BasePromptTemplate | str, name: str | None = None, question: str | Sequence[str] | None = None
) -> list[Scaffold]:
    """Scaffolds for one LangChain prompt template (or a template string, f-string syntax).

    ``question``: the variable(s) holding the user's question (default `QUESTION_FIELDS`:
    ``question``, ``query``, ``input``, ...). In a chat template, a human message after the one with
    the question and without a question of its own (a refine step's "new context" turn) is
    scaffolding: the question is looked for further up.
    """
    fields = QUESTION_FIELDS if question is None else ((question,) if isinstance(question, str) else tuple(question))
    label = name or getattr(prompt, "name", None) or "prompt"
    if isinstance(prompt, str):
        prompt = PromptTemplate.from_template(prompt)
    if isinstance(prompt, PromptTemplate):
        return [s for s in [Scaffold.from_template(label, prompt.template, syntax=_syntax(prompt), question_fields=fields)] if s]
    if not isinstance(prompt, ChatPromptTemplate):
        return []
    return chat_scaffolds(label, [(p.template, _syntax(p)) for p in _human_templates(prompt)], fields)


def _module(path: str) -> Any:
    try:
        return importlib.import_module(path)
    except ImportError:
        return None


def _module_prompts(path: str) -> Iterable[tuple[str, BasePromptTemplate]]:
    for prefix in ("langchain_classic", "langchain"):
        mod = _module(f"{prefix}.{path}")
        if mod is not None:
            for attr, value in vars(mod).items():
                if isinstance(value, BasePromptTemplate):
                    yield f"{prefix}.{path}.{attr}", value
            return


@lru_cache(maxsize=1)
def langchain_scaffolds() -> ScaffoldSet:
    """Every LangChain template this install has that SCOPE recognises (built once)."""
    out: list[Scaffold] = []
    for path in QA_MODULES:
        for name, prompt in _module_prompts(path):
            out.extend(scaffolds_from_prompt(prompt, name))
    for module, attr in FORMAT_INSTRUCTIONS:
        text = getattr(_module(module), attr, None)
        if isinstance(text, str):
            out.append(Scaffold.from_template(f"{module}.{attr}", text, kind="block"))
    return ScaffoldSet(out)
