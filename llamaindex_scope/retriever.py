"""`SCOPERouterRetriever`: LlamaIndex's ``RouterRetriever`` whose nodes say which SCOPE call chose them.

``RouterRetriever`` drops its selector's result, so with a `SCOPESelector` the call id needed for
feedback was lost. This subclass (same constructor) copies each retrieved node with
``metadata["scope_call_id"]`` and ``["scope_model"]`` (kept out of the LLM's and the embedder's
view of the node, and never written back to the index's own nodes).
"""

from __future__ import annotations

from typing import List

from llama_index.core.retrievers import RouterRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from scope_shared.calls import collect_calls

KEYS = ("scope_call_id", "scope_model")


def _tagged(nodes: List[NodeWithScore], calls: list) -> List[NodeWithScore]:
    if not calls:
        return nodes
    record = calls[-1]
    out = []
    for n in nodes:
        node = n.node.model_copy()
        node.metadata = {**node.metadata, "scope_call_id": record.call_id, "scope_model": record.model}
        node.excluded_llm_metadata_keys = [*node.excluded_llm_metadata_keys, *KEYS]
        node.excluded_embed_metadata_keys = [*node.excluded_embed_metadata_keys, *KEYS]
        out.append(NodeWithScore(node=node, score=n.score))
    return out


class SCOPERouterRetriever(RouterRetriever):
    """``RouterRetriever`` whose nodes carry the SCOPE call id and model (see the module docstring)."""

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        with collect_calls() as calls:
            return _tagged(super()._retrieve(query_bundle), calls)

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        with collect_calls() as calls:
            return _tagged(await super()._aretrieve(query_bundle), calls)

    @classmethod
    def class_name(cls) -> str:
        return "SCOPERouterRetriever"
