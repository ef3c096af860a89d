"""The question inside hand-written prompts no template describes: layouts, retrieved text of the
run, chats, and the whole-prompt fallback (warned once, said in the source)."""

from __future__ import annotations

import warnings

import pytest

from scope_shared.routing import routing_text as routing_text_module
from scope_shared.routing.questions import find_question
from scope_shared.routing.retrieved import RetrievedTexts
from scope_shared.routing.routing_text import WHOLE_PROMPT, RoutingTextRule, RoutingTextWarning, Turn

QUESTION = "A train leaves at 3 pm and travels 120 km at 80 km/h.\n\nWhen does it arrive?"
DOCS = [
    "Trains in the region run on a fixed timetable published every spring by the operator.",
    "Question: how fast is the express?\nAnswer: The express runs at 160 km/h on the main line.",
    "Average speeds exclude stops; each stop adds about four minutes to a journey.",
]

STYLES = {
    "labelled, question last, answer cue": lambda q, d: (
        "Relevant information:\n" + "\n\n".join(d) + f"\n\nUser query: {q}\n\nReply:"
    ),
    "XML context and question tags": lambda q, d: (
        "Answer from the context only.\n<context>\n" + "\n".join(d) + f"\n</context>\n<user_question>{q}</user_question>"
    ),
    "markdown headers": lambda q, d: (
        "# Task\nYou answer from the docs.\n\n## Docs\n" + "\n".join(f"* {x}" for x in d) + f"\n\n## Question\n{q}\n"
    ),
    "question first, numbered results": lambda q, d: (
        f"{q}\n\nWeb results:\n" + "\n".join(f"[{i}] {x}" for i, x in enumerate(d, 1)) + "\n\nCite the results you use."
    ),
    "Q/A cue after a separator": lambda q, d: "Background:\n" + "\n".join(d) + f"\n---\nQ: {q}\nA:",
    "an asking line, then the question": lambda q, d: (
        "Evidence (retrieved):\n" + "\n\n".join(d) + f"\n\nPlease answer the following question:\n{q}"
    ),
    "an unknown label opening the last paragraph": lambda q, d: (
        "Knowledge snippets:\n" + "\n".join(f"- {x}" for x in d) + f"\n\nVisitor asks: {q}\nReply:"
    ),
    "bold labels, trailing instruction line": lambda q, d: (
        "**Context**\n" + "\n".join(d) + f"\n\n**Question:** {q}\nIf the context does not help, say so."
    ),
}


@pytest.mark.parametrize("style", list(STYLES))
def test_the_question_is_found_in_each_layout(style):
    found = find_question(STYLES[style](QUESTION, DOCS))
    assert found.text == QUESTION, found


def test_a_plain_question_is_left_as_it_is_even_with_labels_of_its_own():
    for q in [QUESTION, "Q: There are 2 houses.\nClue(s):\n1. The cat lives left.\n\nWho owns the cat?",
              "Write a function.\nInput: [1, 2]\nOutput: 3\nNote: use recursion."]:
        assert find_question(q).text == q and find_question(q).how == "plain"


def test_a_retrieved_faq_with_its_own_question_labels_stays_context():
    prompt = f"Question: {QUESTION}\n\nContext:\n" + "\n\n".join(DOCS)
    assert find_question(prompt).text == QUESTION


def test_text_retrieved_in_the_run_is_context_wherever_it_is():
    plain_docs = [DOCS[0], DOCS[2]]
    unlabelled = "\n\n".join(plain_docs) + f"\n\n{QUESTION}"
    assert find_question(unlabelled).text == unlabelled  # no layout to read: the whole text
    assert find_question(unlabelled, plain_docs).text == QUESTION
    # a retrieved FAQ's own "Question:" label is not read once the run says it was retrieved
    assert find_question("\n\n".join(DOCS) + f"\n\n{QUESTION}", DOCS).text == QUESTION
    # re-flowed whitespace and a label line inside the retrieved text do not matter
    reflowed = "\n".join(d.replace(" ", "  ") for d in DOCS) + f"\n\n{QUESTION}"
    assert find_question(reflowed, DOCS).text == QUESTION
    # the question before the retrieved text, labelled or not
    assert find_question(f"{QUESTION}\n\n" + "\n".join(DOCS), DOCS).text == QUESTION
    # a question that opens with its own "Q:" after the retrieved text keeps it
    puzzle = "Q: There are 2 houses.\nClue(s):\n1. The cat lives left.\n\nWho owns the cat?"
    assert find_question("\n\n".join(DOCS) + f"\n\n{puzzle}", DOCS).text == puzzle


def test_a_chat_routes_on_the_question_turn_not_a_later_documents_turn():
    rule = RoutingTextRule()
    turns = [
        Turn("system", "Use the documents the user shares."),
        Turn("user", QUESTION),
        Turn("user", "Documents:\n" + "\n\n".join(DOCS)),
    ]
    routed = rule.of_turns(turns)
    assert (routed.text, routed.source) == (QUESTION, "question")
    turns = [Turn("user", "hi"), Turn("assistant", "hello"), Turn("user", STYLES["markdown headers"](QUESTION, DOCS))]
    assert rule.of_turns(turns).text == QUESTION
    assert rule.of_turns(turns).source == "question section"
    assert rule.of_turns([Turn("user", "\n\n".join(DOCS)), Turn("user", QUESTION)], DOCS).text == QUESTION


def test_no_question_found_routes_on_the_whole_prompt_says_so_and_warns_once(monkeypatch):
    monkeypatch.setattr(routing_text_module, "_warned", False)
    rule = RoutingTextRule()
    only_context = "Context:\n" + "\n\n".join(DOCS) + "\n\nUse the context above to answer."
    with pytest.warns(RoutingTextWarning, match="no question found"):
        routed = rule.of_turns([Turn("user", only_context)])
    assert routed.text == only_context and routed.source == WHOLE_PROMPT
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rule.of_prompt(only_context).source == WHOLE_PROMPT
        assert rule.of_prompt("\n\n".join(DOCS), DOCS).source == WHOLE_PROMPT  # every word was retrieved
    # a plain prompt is the question, not a whole-prompt fallback
    assert rule.of_prompt(QUESTION).source == "prompt"


def test_retrieved_texts_follow_run_trees_and_are_forgotten_with_their_root():
    store = RetrievedTexts(max_runs=100)
    store.started("chain", None)
    store.started("retriever", "chain")
    store.started("other", None)
    store.retrieved("retriever", ["doc a", "  "])
    store.started("llm", "chain")
    assert store.texts_for("chain") == ["doc a"] and store.texts_for("llm") == ["doc a"]
    assert store.texts_for("other") == [] and store.texts_for(None) == []
    store.ended("retriever")
    store.ended("llm")
    assert store.texts_for("chain") == ["doc a"]
    store.ended("chain")
    assert store.texts_for("chain") == [] and len(store) == 1  # only "other" is left
    capped = RetrievedTexts(max_runs=3)
    for i in range(10):
        capped.started(i, None)
    assert len(capped) == 3
