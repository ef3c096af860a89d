"""Same question, three prompts: does the routing decision stay the same?

Twenty real llmrouter-9 questions (held out of the history, seeded draw), a router over the
bundled data's history part (split seed 0), routed through both integrations in the shapes a
pipeline sends them:

- LangChain (`SCOPERouter`): the bare question; behind a system prompt; inside a RAG prompt
  (LangChain's stuff-QA prompt in one human message, the question's three nearest history
  questions as the retrieved context); the chat refine step of LangChain's refine QA chain.
- LlamaIndex (`SCOPELLM`): the bare question as a chat; behind a system prompt; inside the chat
  text-QA prompt of a query engine; the chat refine step.

For each shape it prints how many decisions equal the bare question's (goal: all of them) and
writes ``benchmarks/results/routing_text_<label>.json``. It only uses APIs that main already had, so
the same script measures main's code (``PYTHONPATH=/path/to/main``) and this branch's.

    python benchmarks/routing_text.py --label after
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SYSTEM = "You are a helpful assistant. Answer accurately and concisely; show your working when it helps."
N_QUESTIONS = 20


def _router():
    from scope_shared.data import dataset_path, load_llmrouter9, stratified_split
    from scope_shared.embedders import default_embedder, embed_with_cache
    from scope_shared.routing.router import Router

    table = load_llmrouter9(dataset_path("llmrouter-9"))
    embedder = default_embedder()
    embs = embed_with_cache(embedder, table.questions, show_progress=False)
    train_idx, test_idx = stratified_split(table.benchmarks, 0.2, 0)
    train, test = table.subset(train_idx), table.subset(test_idx)
    history = train.to_history(embedder, show_progress=False, embeddings=embs[train_idx])
    router = Router(train.cards.values(), history, embedder=embedder)
    pick = np.random.default_rng(0).choice(len(test), N_QUESTIONS, replace=False)
    questions = [test.questions[i] for i in sorted(pick)]
    return router, questions


def _context(router, question: str) -> str:
    """The question's three nearest history questions, as a retriever would hand them over."""
    _, ids = router.history.search(router.embedder.embed([question]), 3)
    return "\n\n".join(router.history.text(int(i)) for i in ids[0] if i >= 0)


def _langchain(router, questions: list[str], knob: dict) -> dict[str, list[str]]:
    from langchain_classic.chains.question_answering import refine_prompts, stuff_prompt
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from langchain_scope import SCOPERouter

    def fake() -> GenericFakeChatModel:
        return GenericFakeChatModel(messages=iter([AIMessage(content="ok")] * 1000))

    llm = SCOPERouter(candidates={m: fake() for m in router.cards}, router=router, **knob)
    shapes = {
        "bare": lambda q: [HumanMessage(q)],
        "system prompt": lambda q: [SystemMessage(SYSTEM), HumanMessage(q)],
        "RAG (stuff QA)": lambda q: [HumanMessage(stuff_prompt.PROMPT.format(context=_context(router, q), question=q))],
        "refine step": lambda q: refine_prompts.CHAT_REFINE_PROMPT.format_messages(
            question=q, existing_answer="The answer is 42.", context_str=_context(router, q)
        ),
    }
    return {name: [llm.invoke(make(q)).response_metadata["scope"]["model"] for q in questions] for name, make in shapes.items()}


def _llamaindex(router, questions: list[str], knob: dict) -> dict[str, list[str]]:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.llms import MockLLM
    from llama_index.core.prompts.chat_prompts import CHAT_REFINE_PROMPT, CHAT_TEXT_QA_PROMPT

    from llamaindex_scope import SCOPELLM

    llm = SCOPELLM(router, {m: MockLLM(max_tokens=4) for m in router.cards}, **knob)
    shapes = {
        "bare": lambda q: [ChatMessage(role="user", content=q)],
        "system prompt": lambda q: [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=q)],
        "RAG (text QA)": lambda q: CHAT_TEXT_QA_PROMPT.format_messages(context_str=_context(router, q), query_str=q),
        "refine step": lambda q: CHAT_REFINE_PROMPT.format_messages(
            context_msg=_context(router, q), query_str=q, existing_answer="The answer is 42."
        ),
    }
    return {
        name: [llm.chat(make(q)).additional_kwargs["scope"]["model"] for q in questions] for name, make in shapes.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="after", help="names the results file (e.g. before / after)")
    ap.add_argument("--min-accuracy", type=float, default=0.8, help="the knob (the router's default)")
    args = ap.parse_args(argv)
    router, questions = _router()
    knob = {"min_accuracy": args.min_accuracy}
    results = {"langchain": _langchain(router, questions, knob), "llamaindex": _llamaindex(router, questions, knob)}
    summary: dict[str, dict[str, int]] = {}
    for framework, shapes in results.items():
        bare = shapes["bare"]
        summary[framework] = {}
        print(f"{framework}: {N_QUESTIONS} questions, knob {knob}")
        for name, chosen in shapes.items():
            same = sum(a == b for a, b in zip(chosen, bare))
            summary[framework][name] = same
            print(f"  {name:<16} same decision as bare: {same:2d}/{N_QUESTIONS}   models: {sorted(set(chosen))}")
    out = Path(__file__).resolve().parent / "results" / f"routing_text_{args.label}.json"
    out.write_text(json.dumps(
        {"label": args.label, "knob": knob, "questions": questions, "decisions": results, "same_as_bare": summary},
        indent=1,
    ))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
