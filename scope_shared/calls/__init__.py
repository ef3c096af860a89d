"""One routed call, framework-agnostic: decide, hold budget, try candidates in order, settle.

`RoutedCall` holds the state of a call in flight; `attempts` drives it through the candidates.
The records it fills (`CallRecord`, `Usage`, `Attempt`) live in `scope_shared.routing.records`.
"""

from scope_shared.calls.attempts import afirst_answer, atry_in_order, first_answer, try_in_order
from scope_shared.calls.collector import collect_calls, note_call
from scope_shared.calls.routed_call import RoutedCall
from scope_shared.errors import AllCandidatesFailed
from scope_shared.routing.records import Attempt, CallRecord, Usage

__all__ = [
    "AllCandidatesFailed",
    "Attempt",
    "CallRecord",
    "RoutedCall",
    "Usage",
    "afirst_answer",
    "atry_in_order",
    "collect_calls",
    "first_answer",
    "note_call",
    "try_in_order",
]
