"""The router's memory: questions, embeddings, outcomes, anchors, and their on-disk store."""

from scope_shared.history.anchors import Anchors
from scope_shared.history.history import History, OutcomeRecord

__all__ = ["Anchors", "History", "OutcomeRecord"]
