"""What retrievers returned in each run: text that is context, never the question.

A RAG pipeline retrieves documents, pastes them into a prompt and calls the model. The routing
text rule reads the prompt's layout to find the question (`questions`), but the run itself knows
better: whatever a retriever returned earlier in the same run is context wherever it appears in
the prompt. The integrations feed their frameworks' run events into a `RetrievedTexts` (LangChain
callbacks: `langchain_scope.retrieved`; LlamaIndex instrumentation spans and retrieval events:
`llamaindex_scope.retrieved`) and ask it, at call time, for the texts of the call's run tree.

Runs are framework ids (any hashable); a run's tree is named by its root. Texts are dropped when
the root run ends; at most ``max_runs`` runs are tracked (the oldest forgotten first), so runs
that never report their end cannot grow it without bound.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable

#: runs tracked at once before the oldest are forgotten
MAX_RUNS = 20_000
#: texts kept per run tree (a retriever loop cannot grow one without bound)
MAX_TEXTS_PER_TREE = 500


class RetrievedTexts:
    """Run trees and the texts retrieved in each (thread-safe)."""

    def __init__(self, max_runs: int = MAX_RUNS) -> None:
        self._root: dict[Hashable, Hashable] = {}  # run -> the root of its tree
        self._texts: dict[Hashable, list[str]] = {}  # root -> retrieved texts, oldest first
        self._lock = threading.Lock()
        self._max_runs = max_runs

    def started(self, run: Hashable, parent: Hashable | None) -> None:
        """A run started (under ``parent``, or as a root)."""
        with self._lock:
            self._root[run] = run if parent is None else self._root.get(parent, parent)
            if len(self._root) > self._max_runs:
                for old in list(self._root)[: len(self._root) - self._max_runs]:
                    root = self._root.pop(old)
                    if old == root:
                        self._texts.pop(root, None)

    def retrieved(self, run: Hashable, texts: Iterable[str]) -> None:
        """A retriever run returned ``texts``."""
        texts = [t for t in texts if t and t.strip()]
        if not texts:
            return
        with self._lock:
            root = self._root.get(run, run)
            kept = self._texts.setdefault(root, [])
            kept.extend(texts[: max(0, MAX_TEXTS_PER_TREE - len(kept))])

    def ended(self, run: Hashable) -> None:
        """A run ended; a root's texts and its runs are forgotten."""
        with self._lock:
            root = self._root.pop(run, None)
            if root is None or root != run:
                return
            self._texts.pop(root, None)
            for r in [r for r, top in self._root.items() if top == root]:
                del self._root[r]

    def texts_for(self, run: Hashable | None) -> list[str]:
        """The texts retrieved so far in ``run``'s tree (``run``: any run of it, e.g. the caller's parent)."""
        if run is None:
            return []
        with self._lock:
            return list(self._texts.get(self._root.get(run, run), ()))

    def __len__(self) -> int:
        return len(self._root)


__all__ = ["MAX_RUNS", "RetrievedTexts"]
