"""Pricing a call before it is made: the prompt that will really be sent, and the hold for it.

A hold must cover what the call can cost, so it prices every token sent (system prompt, chat
history, retrieved context, tool schemas), not only the routing text the decision is made on, plus
the expected output. Integrations turn their framework's messages into texts; the counting rule
is here, once.
"""

from __future__ import annotations

from collections.abc import Iterable

from scope_shared.routing.decision import Estimate
from scope_shared.tokens import TokenCounter

#: tokens a chat format adds around each message (role markers, separators); OpenAI's is 3-4
PER_MESSAGE_TOKENS = 4


def prompt_tokens(texts: Iterable[str], counter: TokenCounter, per_message: int = PER_MESSAGE_TOKENS) -> int:
    """Input tokens of a prompt made of ``texts`` (one per message, tool schema, ...), counted with
    ``counter`` plus ``per_message`` for each part's framing. Empty parts count only the framing."""
    total = 0
    for text in texts:
        total += per_message + (counter(text) if text else 0)
    return total


def hold_amount(estimate: Estimate, hold_factor: float = 1.0) -> float:
    """What to hold for a call: its expected cost (prompt included) times the budgets' hold factor,
    which grows once providers have billed more than they held."""
    return estimate.expected_cost * hold_factor
