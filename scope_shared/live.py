"""Live shared objects (a router, a ledger): copies are the object itself, pickling says what to do instead.

A `Ledger` is one budget that many calls draw from, and a `Router` one memory (history, index,
embedder) that feedback grows: a deep copy made behind the user's back (``copy.deepcopy`` of a
chain, a framework copying a model's fields) must not split them into independent twins that
silently stop sharing. So copying returns the same object. Pickling cannot keep that promise across
processes, so it raises a `ScopeError` that says what to do instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from scope_shared.errors import UnpicklableError


class LiveObject:
    """Mixin: ``copy``/``deepcopy`` return ``self``; ``pickle`` raises with ``pickle_advice``."""

    pickle_advice: ClassVar[str] = ""

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise UnpicklableError(f"a {type(self).__name__} is live shared state and cannot be pickled: {self.pickle_advice}")
