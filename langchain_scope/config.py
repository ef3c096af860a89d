"""Reading the knob and the ledger for one call out of LangChain's config (or an agent's context).

Keys (in ``RunnableConfig["configurable"]``, or on an agent run's ``context``):

- one knob: ``max_cost`` (USD per call), ``tradeoff`` (λ), ``min_accuracy`` (0..1),
  ``accuracy_margin`` (0..1) or ``alpha`` (0..1);
- ``scope_ledger``: a `scope_shared.Ledger` every routed step of the run draws from;
- ``scope_routing_text``: the text to route this call on (`langchain_scope.routing_text`).

A key that looks like one of these but is not (``max_costs``, ``scope_leger``) is almost surely a
typo that would silently change nothing: it draws an `UnknownConfigKeyWarning`, once per key.

Which setting wins is decided by the core's `scope_shared.budget.settings.settings_for_call`, the
same for every integration: a value set for the call (the run's ``context``, then ``configurable``)
wins over a ``scope_budget`` block around the call, which wins over the router's own fields, which
win over the core router's default knob. ``chain.with_config(configurable={...})`` therefore changes
the budget of one chain without rebuilding anything, and two chains sharing one router keep
separate ledgers. Budgets nest: a call is charged to the run's ledger and to the ledger of every
``scope_budget`` block around it; `langchain_scope.with_budget` nests a budget inside the run's.
"""

from __future__ import annotations

import difflib
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from scope_shared.budget.settings import CallSettings, Settings, settings_for_call
from scope_shared.routing.knobs import KNOB_KINDS
from scope_shared.routing.routing_text import ROUTING_TEXT_KEY

LEDGER_KEY = "scope_ledger"
KEYS: tuple[str, ...] = (*KNOB_KINDS, LEDGER_KEY, ROUTING_TEXT_KEY)
#: where a LangGraph run keeps its `Runtime` (whose ``context`` is the run's ``context=``) in the
#: config (``langgraph._internal._constants.CONFIG_KEY_RUNTIME``), read without importing langgraph
LANGGRAPH_RUNTIME_KEY = "__pregel_runtime"


class UnknownConfigKeyWarning(UserWarning):
    """A ``configurable``/context key looks like a SCOPE key but is not one (a typo, most likely)."""


_warned: set[str] = set()
_warned_lock = threading.Lock()


def unknown_keys(layer: Mapping[str, Any] | None) -> dict[str, str | None]:
    """Keys of ``layer`` that look like SCOPE keys but are not: key -> the key it probably meant."""
    out: dict[str, str | None] = {}
    for key in layer or {}:
        if not isinstance(key, str) or key in KEYS:
            continue
        close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.8)
        if close or key.startswith("scope_"):
            out[key] = close[0] if close else None
    return out


def warn_unknown(layer: Mapping[str, Any] | None) -> None:
    """Warn (once per key and process) about keys of ``layer`` that look like misspelt SCOPE keys."""
    for key, meant in unknown_keys(layer).items():
        with _warned_lock:
            if key in _warned:
                continue
            _warned.add(key)
        hint = f"; did you mean {meant!r}?" if meant else ""
        warnings.warn(
            f"configurable key {key!r} is not a SCOPE setting and is ignored{hint} "
            f"(SCOPE reads {', '.join(KEYS)})",
            UnknownConfigKeyWarning,
            stacklevel=4,
        )


def as_mapping(obj: Any) -> dict[str, Any]:
    """The SCOPE keys of a dict, dataclass or pydantic object (an agent's ``context``)."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return {k: obj[k] for k in KEYS if obj.get(k) is not None}
    return {k: getattr(obj, k) for k in KEYS if getattr(obj, k, None) is not None}


def run_context(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The SCOPE keys of a LangGraph run's ``context=`` (``create_agent(...).invoke(..., context=)``),
    found in the run's config; empty outside a graph run."""
    runtime = ((config or {}).get("configurable") or {}).get(LANGGRAPH_RUNTIME_KEY)
    return as_mapping(getattr(runtime, "context", None))


def call_layer(layer: Mapping[str, Any] | None) -> Settings:
    """The knob and ledger one ``configurable``/context layer sets (its SCOPE keys), validated."""
    return Settings.read(as_mapping(layer), ledger_key=LEDGER_KEY)


def settings_of_call(config: Mapping[str, Any] | None, context: Mapping[str, Any] | None, built: Settings) -> CallSettings:
    """The settings of one call made with ``config`` (its ``configurable``; ``context``: the SCOPE
    keys of an agent run's context, which win), over the component's ``built`` settings."""
    configurable = (config or {}).get("configurable")
    warn_unknown(configurable)
    return settings_for_call(call_layer(context), call_layer(configurable), built=built)
