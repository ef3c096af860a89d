"""Hand-written RAG prompt styles and multi-turn chats, for `benchmarks/routing_text.py`.

Each style turns ``(question, documents)`` into the messages a user would send, as
``[(role, text), ...]`` (role: system / user / assistant). None of them is registered with the
router: the routing text must be found by the general rule. ``TUNING`` are the styles the rule was
developed against. ``HELD_OUT`` were written after the rule's first version, but the rule was then
adjusted while their results were visible too: they are not a clean hold-out. ``UNSEEN`` were
written last and measured once (2 of 4 failed: "Respond to:" and "Customer asks:" were not read;
52 % of their cases passed); the rule was then extended for them, so they are no longer unseen.
"""

from __future__ import annotations

from collections.abc import Callable

Messages = list[tuple[str, str]]
Style = Callable[[str, list[str]], Messages]


def _numbered(docs: list[str], fmt: str) -> str:
    return "\n".join(fmt.format(i=i, doc=d) for i, d in enumerate(docs, 1))


def hub_rag(q: str, docs: list[str]) -> Messages:
    """The LangChain hub's popular RAG prompt (one human message)."""
    return [("user", (
        "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to "
        "answer the question. If you don't know the answer, just say that you don't know. Use three sentences "
        f"maximum and keep the answer concise.\nQuestion: {q} \nContext: {chr(10).join(docs)} \nAnswer:"
    ))]


def context_then_question(q: str, docs: list[str]) -> Messages:
    return [("user", (
        "Answer the question based only on the following context. If the context does not contain the answer, "
        "say so.\n\nContext:\n" + "\n\n".join(docs) + f"\n\nQuestion: {q}\n\nAnswer:"
    ))]


def xml_documents(q: str, docs: list[str]) -> Messages:
    body = "\n".join(
        f'<document index="{i}">\n<source>kb-{i}</source>\n<document_content>\n{d}\n</document_content>\n</document>'
        for i, d in enumerate(docs, 1)
    )
    return [("user", (
        "You are a careful research assistant. Read the documents, then answer the question.\n\n"
        f"<documents>\n{body}\n</documents>\n\n<question>\n{q}\n</question>\n\n"
        "Put your final answer inside <answer></answer> tags."
    ))]


def markdown_sections(q: str, docs: list[str]) -> Messages:
    return [("user", (
        "## Instructions\nAnswer using only the context below and cite the bullet you used.\n\n"
        "### Context\n" + "\n".join(f"- {d}" for d in docs) + f"\n\n### Question\n{q}\n\n### Answer\n"
    ))]


def question_first_search_results(q: str, docs: list[str]) -> Messages:
    return [("user", (
        f"{q}\n\nSearch results:\n" + _numbered(docs, "[{i}] {doc}")
        + "\n\nUsing the search results above, write a concise answer. Cite results like [1]."
    ))]


def bold_sources_user_question(q: str, docs: list[str]) -> Messages:
    return [("user", (
        "**Sources**\n" + _numbered(docs, "Document {i}: {doc}") + f"\n\n**User question:** {q}\n\nRespond in English."
    ))]


def uppercase_quoted(q: str, docs: list[str]) -> Messages:
    return [("user", 'CONTEXT:\n"""\n' + "\n---\n".join(docs) + f'\n"""\n\nQUESTION: {q}\nANSWER:')]


def system_rules_user_rag(q: str, docs: list[str]) -> Messages:
    return [
        ("system", "You answer questions for an internal help desk. Never invent facts."),
        ("user", (
            "Retrieved passages:\n-----\n" + "\n-----\n".join(docs) + "\n-----\n"
            f"Query: {q}\nIf the passages are not relevant, answer from general knowledge."
        )),
    ]


# ------------------------------------------------------------------ written after the rule, only measured
def background_then_ask(q: str, docs: list[str]) -> Messages:
    return [("user", "Here is some background information:\n\n" + "\n\n".join(docs) + f"\n\nNow answer this: {q}")]


def notes_and_my_question(q: str, docs: list[str]) -> Messages:
    return [("user", (
        "I found these notes that might help.\n\n" + "\n".join(f"• {d}" for d in docs)
        + f"\n\nMy question:\n{q}\n\nThanks!"
    ))]


def tagged_context_question_first(q: str, docs: list[str]) -> Messages:
    return [("user", (
        f"<query>{q}</query>\n<context>\n" + "\n\n".join(docs)
        + "\n</context>\nAnswer the query using the context. If unsure, say you are unsure."
    ))]


def knowledge_base_bracket_labels(q: str, docs: list[str]) -> Messages:
    return [("user", (
        "[Instructions]\nYou are a support bot. Use the knowledge base excerpts to answer.\n\n"
        "[Knowledge base]\n" + _numbered(docs, "({i}) {doc}") + f"\n\n[Question]\n{q}"
    ))]


def docs_turn_then_question_turn(q: str, docs: list[str]) -> Messages:
    return [
        ("system", "Use the documents the user shares."),
        ("user", "Documents:\n" + "\n\n".join(docs)),
        ("assistant", "Thanks, I have read them. What would you like to know?"),
        ("user", q),
    ]


def instruction_after_question_and_references(q: str, docs: list[str]) -> Messages:
    return [("user", (
        f"Question: {q}\n\nReferences:\n" + _numbered(docs, "{i}. {doc}")
        + "\n\nGive a short answer, then list the references you relied on."
    ))]


# ------------------------------------------------------------------ written last, measured once
def sources_with_id_tags(q: str, docs: list[str]) -> Messages:
    return [("user", (
        "Answer the user's question using the provided sources.\n\nSources:\n"
        + "\n".join(f"<source id={i}>{d}</source>" for i, d in enumerate(docs, 1)) + f"\n\nUser's question: {q}"
    ))]


def setext_headers_respond_to(q: str, docs: list[str]) -> Messages:
    return [("user", (
        "Reference material\n==================\n" + "\n\n".join(docs) + f"\n\nTask\n====\nRespond to: {q}"
    ))]


def here_is_the_question(q: str, docs: list[str]) -> Messages:
    return [("user", (
        "Here is a document:\n<document>\n" + "\n".join(docs) + f"\n</document>\n\nHere is the question: {q}"
        "\n\nAnswer in the same language as the question."
    ))]


def customer_asks(q: str, docs: list[str]) -> Messages:
    return [
        ("system", "You are a support agent."),
        ("user", "Knowledge snippets:\n" + "\n".join(f"- {d}" for d in docs) + f"\n\nCustomer asks: {q}\nAgent reply:"),
    ]


# ------------------------------------------------------------------ multi-turn chats
def chat_follow_up(q: str, docs: list[str]) -> Messages:
    return [
        ("system", "You are a friendly tutor."),
        ("user", "Can you help me with some questions today?"),
        ("assistant", "Of course! Ask away."),
        ("user", q),
    ]


def chat_rag_after_history(q: str, docs: list[str]) -> Messages:
    return [
        ("user", "Hi, I'm studying for an exam."),
        ("assistant", "Great, how can I help?"),
        ("user", "Context:\n" + "\n\n".join(docs) + f"\n\nQuestion: {q}"),
    ]


def chat_context_in_system(q: str, docs: list[str]) -> Messages:
    return [
        ("system", "Answer with the help of these documents:\n" + "\n\n".join(docs)),
        ("user", "Earlier question: what is 2 + 2?"),
        ("assistant", "4."),
        ("user", q),
    ]


TUNING: dict[str, Style] = {
    "hub RAG prompt": hub_rag,
    "Context:/Question: labels": context_then_question,
    "XML documents + <question>": xml_documents,
    "markdown ### sections": markdown_sections,
    "question first, [n] search results": question_first_search_results,
    "**Sources** + **User question:**": bold_sources_user_question,
    "UPPERCASE quoted context": uppercase_quoted,
    "system + passages + Query:": system_rules_user_rag,
}
HELD_OUT: dict[str, Style] = {
    "background, 'Now answer this:'": background_then_ask,
    "notes + 'My question:'": notes_and_my_question,
    "<query> first, <context>": tagged_context_question_first,
    "[bracket] labels": knowledge_base_bracket_labels,
    "documents turn, then question turn": docs_turn_then_question_turn,
    "Question: first, References:": instruction_after_question_and_references,
}
UNSEEN: dict[str, Style] = {
    "<source id=n> tags + User's question:": sources_with_id_tags,
    "setext headers, 'Respond to:'": setext_headers_respond_to,
    "<document> + 'Here is the question:'": here_is_the_question,
    "snippets + 'Customer asks:'": customer_asks,
}
CHATS: dict[str, Style] = {
    "chat: follow-up question": chat_follow_up,
    "chat: RAG turn after history": chat_rag_after_history,
    "chat: context in system": chat_context_in_system,
}
