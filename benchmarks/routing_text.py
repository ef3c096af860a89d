"""Same question, many prompts: does the routing decision (and p_correct) stay the bare question's?

Real llmrouter-9 questions (held out of the history: split seed 0; ``--per-seed`` questions drawn
with each of ``--seeds``), a router over the history part, routed through both integrations in the
shapes a pipeline sends them. No template is registered: the hand-written styles
(`benchmarks/prompt_styles.py`) must be read by the general rule. The retrieved context is each
question's three nearest history questions (what a retriever over that history would return).

Shapes, in each integration:

- the frameworks' own: the bare question (the reference); behind a system prompt; LangChain's
  stuff-QA prompt / LlamaIndex's chat text-QA prompt; the chat refine step;
- ``TUNING`` hand-written styles (the rule was developed against these), ``HELD_OUT`` ones (written
  after its first version, but seen while it was adjusted) and ``UNSEEN`` ones (written last;
  measured once at 52 % before the rule was extended for them), each as the messages a user sends;
- multi-turn chats (``CHATS``);
- a pipeline with a real retriever and an unlabelled prompt ("{context}\\n\\n{question}"), which only
  the run's own knowledge of what was retrieved can read: LangChain ``retriever | prompt | SCOPERouter``
  and a LlamaIndex ``RetrieverQueryEngine`` with that prompt as its text-QA template.

A case passes when its decision equals the bare question's and every candidate's p_correct is
within 0.02 of it (stricter than the chosen model's alone). It prints the pass rate per shape,
per group and overall (the goal: >= 95 %), as the mean over seeds, and writes
``benchmarks/results/routing_text_<label>.json``.

    python benchmarks/routing_text.py --label after
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prompt_styles import CHATS, HELD_OUT, TUNING, UNSEEN, Messages  # noqa: E402

SYSTEM = "You are a helpful assistant. Answer accurately and concisely; show your working when it helps."
P_TOLERANCE = 0.02
GOAL = 0.95
UNLABELLED = "{context}\n\n{question}"


def _router():
    from scope_shared.data import dataset_path, load_llmrouter9, stratified_split
    from scope_shared.embedders import default_embedder
    from scope_shared.onboarding.pack import load_pack
    from scope_shared.routing.router import Router

    table = load_llmrouter9(dataset_path("llmrouter-9"))
    embedder = default_embedder()
    # the bundled anchor pack holds these questions' embeddings (same embedder): no re-embedding
    pack = load_pack()
    assert pack.manifest.get("embedder") == embedder.name
    by_text = {q.text: i for i, q in enumerate(pack.questions)}
    embs = pack.embeddings[[by_text[q] for q in table.questions]].astype(np.float32)
    embedder.prime(table.questions, embs)
    train_idx, test_idx = stratified_split(table.benchmarks, 0.2, 0)
    train, test = table.subset(train_idx), table.subset(test_idx)
    history = train.to_history(embedder, show_progress=False, embeddings=embs[train_idx])
    return Router(train.cards.values(), history, embedder=embedder), test


def _docs(router, question: str) -> list[str]:
    """The question's three nearest history questions, as a retriever would hand them over."""
    _, ids = router.history.search(router.embedder.embed([question]), 3)
    return [router.history.text(int(i)) for i in ids[0] if i >= 0]


def _outcome(meta: dict) -> dict:
    return {
        "model": meta["chosen"],
        "p": {m: e["p_correct"] for m, e in meta["estimates"].items()},
        "source": meta["routing_text_source"],
    }


def _styles() -> dict[str, tuple[str, object]]:
    out: dict[str, tuple[str, object]] = {}
    for group, styles in (("tuning", TUNING), ("held out", HELD_OUT), ("unseen", UNSEEN), ("chat", CHATS)):
        for name, style in styles.items():
            out[name] = (group, style)
    return out


def _langchain(router, questions: list[str], docs: dict[str, list[str]], knob: dict) -> dict[str, list[dict]]:
    from langchain_classic.chains.question_answering import refine_prompts, stuff_prompt
    from langchain_core.documents import Document
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from langchain_scope import SCOPERouter

    def fake() -> GenericFakeChatModel:
        return GenericFakeChatModel(messages=iter([AIMessage(content="ok")] * 100_000))

    llm = SCOPERouter(candidates={m: fake() for m in router.cards}, router=router, **knob)
    roles = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}

    def convert(msgs: Messages) -> list:
        return [roles[r](t) for r, t in msgs]

    class Nearest(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager=None) -> list[Document]:  # type: ignore[override]
            return [Document(page_content=d) for d in docs[query]]

    chain = (
        {"context": Nearest() | RunnableLambda(lambda ds: "\n\n".join(d.page_content for d in ds)),
         "question": RunnablePassthrough()}
        | ChatPromptTemplate.from_messages([("human", UNLABELLED)])
        | llm
    )
    shapes = {
        "bare": lambda q: llm.invoke([HumanMessage(q)]),
        "system prompt": lambda q: llm.invoke([SystemMessage(SYSTEM), HumanMessage(q)]),
        "LangChain stuff QA": lambda q: llm.invoke([HumanMessage(stuff_prompt.PROMPT.format(context="\n\n".join(docs[q]), question=q))]),
        "LangChain refine step": lambda q: llm.invoke(refine_prompts.CHAT_REFINE_PROMPT.format_messages(
            question=q, existing_answer="The answer is 42.", context_str="\n\n".join(docs[q]))),
        **{name: (lambda q, s=style: llm.invoke(convert(s(q, docs[q])))) for name, (_, style) in _styles().items()},
        "retriever | unlabelled prompt | router": lambda q: chain.invoke(q),
    }
    return {name: [_outcome(call(q).response_metadata["scope"]) for q in questions] for name, call in shapes.items()}


def _llamaindex(router, questions: list[str], docs: dict[str, list[str]], knob: dict) -> dict[str, list[dict]]:
    from llama_index.core import PromptTemplate
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.llms import MockLLM
    from llama_index.core.prompts.chat_prompts import CHAT_REFINE_PROMPT, CHAT_TEXT_QA_PROMPT
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from llamaindex_scope import SCOPELLM, collect_calls

    llm = SCOPELLM(router, {m: MockLLM(max_tokens=4) for m in router.cards}, **knob)

    def convert(msgs: Messages) -> list[ChatMessage]:
        return [ChatMessage(role=r, content=t) for r, t in msgs]

    class Nearest(BaseRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            return [NodeWithScore(node=TextNode(text=d), score=1.0) for d in docs[query_bundle.query_str]]

    engine = RetrieverQueryEngine.from_args(
        Nearest(), llm=llm, text_qa_template=PromptTemplate(UNLABELLED.replace("{context}", "{context_str}").replace("{question}", "{query_str}")),
        response_mode="compact",
    )

    def query(q: str) -> dict:
        with collect_calls() as calls:
            engine.query(q)
        return calls[0].metadata()

    shapes = {
        "bare": lambda q: llm.chat([ChatMessage(role="user", content=q)]).additional_kwargs["scope"],
        "system prompt": lambda q: llm.chat([ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=q)]).additional_kwargs["scope"],
        "LlamaIndex text QA": lambda q: llm.chat(CHAT_TEXT_QA_PROMPT.format_messages(context_str="\n\n".join(docs[q]), query_str=q)).additional_kwargs["scope"],
        "LlamaIndex refine step": lambda q: llm.chat(CHAT_REFINE_PROMPT.format_messages(
            context_msg="\n\n".join(docs[q]), query_str=q, existing_answer="The answer is 42.")).additional_kwargs["scope"],
        **{name: (lambda q, s=style: llm.chat(convert(s(q, docs[q]))).additional_kwargs["scope"]) for name, (_, style) in _styles().items()},
        "query engine, retriever + unlabelled prompt": query,
    }
    return {name: [_outcome(call(q)) for q in questions] for name, call in shapes.items()}


def _passes(case: dict, bare: dict) -> bool:
    return case["model"] == bare["model"] and all(abs(case["p"][m] - bare["p"][m]) <= P_TOLERANCE for m in bare["p"])


def _group(name: str) -> str:
    styles = _styles()
    if name in styles:
        return styles[name][0]
    if name.startswith(("retriever", "query engine")):
        return "retriever pipeline"
    return "framework"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="after", help="names the results file")
    ap.add_argument("--min-accuracy", type=float, default=0.8, help="the knob (the router's default)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the question draws")
    ap.add_argument("--per-seed", type=int, default=40, help="held-out questions per seed")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    router, test = _router()
    knob = {"min_accuracy": args.min_accuracy}
    per_seed: dict[int, dict] = {}
    for seed in args.seeds:
        pick = np.random.default_rng(seed).choice(len(test), args.per_seed, replace=False)
        questions = [test.questions[i] for i in sorted(pick)]
        docs = {q: _docs(router, q) for q in questions}
        started = time.perf_counter()
        runs = {"langchain": _langchain(router, questions, docs, knob), "llamaindex": _llamaindex(router, questions, docs, knob)}
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        per_seed[seed] = {"questions": questions, "runs": runs}

    frameworks = ("langchain", "llamaindex")
    shapes = {fw: [s for s in per_seed[args.seeds[0]]["runs"][fw] if s != "bare"] for fw in frameworks}
    table: dict[str, dict[str, float]] = {fw: {} for fw in frameworks}
    groups: dict[str, dict[str, float]] = {fw: {} for fw in frameworks}
    for fw in frameworks:
        for shape in shapes[fw]:
            rates = []
            for seed in args.seeds:
                runs = per_seed[seed]["runs"][fw]
                rates.append(np.mean([_passes(c, b) for c, b in zip(runs[shape], runs["bare"])]))
            table[fw][shape] = float(np.mean(rates))
        for g in ("framework", "tuning", "held out", "unseen", "chat", "retriever pipeline"):
            members = [table[fw][s] for s in shapes[fw] if _group(s) == g]
            groups[fw][g] = float(np.mean(members))
        hand = [table[fw][s] for s in shapes[fw] if _group(s) in ("tuning", "held out", "unseen", "chat", "retriever pipeline")]
        groups[fw]["overall (beyond the frameworks' templates)"] = float(np.mean(hand))
        groups[fw]["overall (every shape)"] = float(np.mean(list(table[fw].values())))

    n = args.per_seed
    print(f"{n} held-out questions x seeds {args.seeds}; knob {knob}; pass: same decision as the bare question "
          f"and every p_correct within {P_TOLERANCE}; goal >= {GOAL:.0%}")
    for fw in frameworks:
        print(f"\n{fw}")
        for shape in shapes[fw]:
            sources = sorted({c["source"] for seed in args.seeds for c in per_seed[seed]["runs"][fw][shape]})
            print(f"  [{_group(shape):<18}] {shape:<44} {table[fw][shape]:6.1%}   sources: {', '.join(sources)[:90]}")
        for g, rate in groups[fw].items():
            flag = "" if rate >= GOAL else "   (below the goal)"
            print(f"  {g:<64} {rate:6.1%}{flag}")
    out = Path(__file__).resolve().parent / "results" / f"routing_text_{args.label}.json"
    out.write_text(json.dumps({
        "label": args.label, "knob": knob, "seeds": args.seeds, "per_seed": n, "p_tolerance": P_TOLERANCE,
        "goal": GOAL, "pass_rate": table, "groups": groups,
        "cases": {str(s): per_seed[s] for s in args.seeds},
    }, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
