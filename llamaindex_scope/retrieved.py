"""What retrievers returned earlier in the same LlamaIndex query: context, never the routing text.

A span handler and an event handler on LlamaIndex's root dispatcher (added when this module is
imported, as observability integrations add theirs) keep each span's tree and the nodes every
``RetrievalEndEvent`` carried. When a query engine's synthesizer calls `SCOPELLM`, the LLM asks
`retrieved_texts` for the texts of the active span's tree (`scope_shared.routing.retrieved`); the
texts are forgotten when the tree's root span ends.
"""

from __future__ import annotations

import inspect
from typing import Any

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.retrieval import RetrievalEndEvent
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.schema import MetadataMode

from scope_shared.routing.retrieved import RetrievedTexts

STORE = RetrievedTexts()


class RetrievedSpans(BaseSpanHandler[Any]):
    """Feeds span starts and ends into `STORE` (the tree of every span)."""

    @classmethod
    def class_name(cls) -> str:
        return "SCOPERetrievedSpans"

    def new_span(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                 parent_span_id: str | None = None, tags: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        STORE.started(id_, parent_span_id)
        return None  # nothing kept in open_spans: `STORE` holds what is needed

    def prepare_to_exit_span(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                             result: Any = None, **kwargs: Any) -> Any:
        STORE.ended(id_)
        return None

    def prepare_to_drop_span(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                             err: BaseException | None = None, **kwargs: Any) -> Any:
        STORE.ended(id_)
        return None


class RetrievedNodes(BaseEventHandler):
    """Feeds the nodes of every retrieval into `STORE` (as the LLM sees them, and as bare text)."""

    @classmethod
    def class_name(cls) -> str:
        return "SCOPERetrievedNodes"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, RetrievalEndEvent) and event.span_id:
            texts: list[str] = []
            for n in event.nodes:
                texts.append(n.node.get_content(metadata_mode=MetadataMode.LLM))
                texts.append(n.node.get_content(metadata_mode=MetadataMode.NONE))
            STORE.retrieved(event.span_id, texts)


_root = get_dispatcher()
if not any(isinstance(h, RetrievedSpans) for h in _root.span_handlers):
    _root.add_span_handler(RetrievedSpans())
if not any(isinstance(h, RetrievedNodes) for h in _root.event_handlers):
    _root.add_event_handler(RetrievedNodes())


def retrieved_texts() -> list[str]:
    """The texts retrievers returned so far in the query (span tree) the caller runs in."""
    return STORE.texts_for(active_span_id.get())


__all__ = ["RetrievedNodes", "RetrievedSpans", "retrieved_texts"]
