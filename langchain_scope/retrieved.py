"""What retrievers returned earlier in the same LangChain run: context, never the routing text.

A callback handler (`RetrievedTextsHandler`) is added to every LangChain callback manager through
``langchain_core``'s configure hook (the way LangSmith's tracer is), so no registration is needed:
in ``retriever | prompt | SCOPERouter`` it sees the retriever's ``on_retriever_end`` before the
router is called, and the router asks `retrieved_texts` for the texts of its own run tree
(`scope_shared.routing.retrieved`). Each tree's texts are forgotten when its root run ends.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig
from langchain_core.tracers.context import register_configure_hook

from scope_shared.routing.retrieved import RetrievedTexts


class RetrievedTextsHandler(BaseCallbackHandler):
    """Keeps the run tree of every run it sees, and what its retrievers returned."""

    run_inline = True  # in order, in the caller's thread: the texts are there before the next step runs
    raise_error = False

    def __init__(self, store: RetrievedTexts | None = None) -> None:
        self.store = store or RetrievedTexts()

    def _start(self, run_id: UUID, parent_run_id: UUID | None, **_: Any) -> None:
        self.store.started(run_id, parent_run_id)

    def _end(self, *_: Any, run_id: UUID, **__: Any) -> None:
        self.store.ended(run_id)

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> None:
        self._start(run_id, parent_run_id)

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> None:
        self._start(run_id, parent_run_id)

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> None:
        self._start(run_id, parent_run_id)

    def on_tool_start(self, serialized: Any, input_str: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> None:
        self._start(run_id, parent_run_id)

    def on_retriever_start(self, serialized: Any, query: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> None:
        self._start(run_id, parent_run_id)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kw: Any) -> None:
        self.store.retrieved(run_id, [d.page_content for d in documents or () if isinstance(d, Document)])
        self.store.ended(run_id)

    on_chain_end = on_chain_error = on_llm_end = on_llm_error = _end
    on_tool_end = on_tool_error = on_retriever_error = _end


#: the handler every callback manager gets (a context variable holding it, as the configure hook needs)
HANDLER = RetrievedTextsHandler()
_handler_var: ContextVar[RetrievedTextsHandler | None] = ContextVar("scope_retrieved_texts", default=HANDLER)
register_configure_hook(_handler_var, True)


def retrieved_texts(config: RunnableConfig | None) -> list[str]:
    """The texts retrievers returned so far in the run a call with ``config`` belongs to."""
    callbacks = (config or {}).get("callbacks")
    parent = callbacks.parent_run_id if isinstance(callbacks, BaseCallbackManager) else None
    return HANDLER.store.texts_for(parent)


__all__ = ["HANDLER", "RetrievedTextsHandler", "retrieved_texts"]
