"""One routed call, framework-agnostic: decide, hold budget, try candidates in order, settle.

`RoutedCall` holds the state of a call in flight (`RoutedCall.plan` is the planning step of every
integration: routing text + settings -> decision and record); `attempts` drives it through the
candidates; `holds` prices the prompt that will be sent; `settling` turns usage into a ledger entry
(never failing); `streams` is the streamed fallback loop and covers streams stopped early; `fallback` says which errors move on to the
next candidate; `stops` renders a budget stop; `collector` hands the records of a block's calls
over (`collect_calls`). The records it fills (`CallRecord`, `Usage`,
`Attempt`) live in `scope_shared.routing.records`.
"""

from scope_shared.calls.attempts import afirst_answer, atry_in_order, first_answer, try_in_order
from scope_shared.calls.collector import collect_calls, note_call
from scope_shared.calls.fallback import DEFAULT_FALLBACK_ON, FallbackOn, check_fallback_on
from scope_shared.calls.holds import PER_MESSAGE_TOKENS, hold_amount, prompt_tokens
from scope_shared.calls.routed_call import RoutedCall
from scope_shared.calls.stops import ends_gracefully, stop_metadata, stop_text
from scope_shared.calls.streams import aclosing, closing, stop_reason
from scope_shared.errors import AllCandidatesFailed
from scope_shared.routing.records import Attempt, CallRecord, Usage

__all__ = [
    "DEFAULT_FALLBACK_ON",
    "PER_MESSAGE_TOKENS",
    "AllCandidatesFailed",
    "Attempt",
    "CallRecord",
    "FallbackOn",
    "RoutedCall",
    "Usage",
    "aclosing",
    "afirst_answer",
    "atry_in_order",
    "check_fallback_on",
    "closing",
    "collect_calls",
    "ends_gracefully",
    "first_answer",
    "hold_amount",
    "note_call",
    "prompt_tokens",
    "stop_metadata",
    "stop_reason",
    "stop_text",
    "try_in_order",
]
