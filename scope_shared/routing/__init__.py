"""Routing: from estimates to a decision under one knob (router, decision, knobs, policies, paper scorer).

Sits above `history` and `estimators`, below `budget` and `calls`: the router reads a ledger's
remaining budget but never imports the budget floor.
"""

from scope_shared.routing.decision import Decision, Estimate
from scope_shared.routing.exploration import Explorer
from scope_shared.routing.knobs import DEFAULT_ACCURACY_MARGIN, DEFAULT_KNOB, KNOB_KINDS, Knob, as_knob, make_knob
from scope_shared.routing.records import Attempt, CallBook, CallRecord, Usage
from scope_shared.routing.router import DEFAULT_OUTPUT_TOKENS, Router

__all__ = [
    "DEFAULT_ACCURACY_MARGIN",
    "DEFAULT_KNOB",
    "DEFAULT_OUTPUT_TOKENS",
    "KNOB_KINDS",
    "Attempt",
    "CallBook",
    "CallRecord",
    "Decision",
    "Estimate",
    "Explorer",
    "Knob",
    "Router",
    "Usage",
    "as_knob",
    "make_knob",
]
