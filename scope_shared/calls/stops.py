"""A budget stop, as the integrations show it: raised, or (mode "end") a final answer that ends the run.

Under an ``"end"``-mode budget an agent run that runs out of money ends like LangChain's
``ModelCallLimitMiddleware(exit_behavior="end")``: the model step answers with a final message
that says so (no tool calls, so the agent loop stops) and charges nothing. The words and the
metadata are the same in every integration.
"""

from __future__ import annotations

from typing import Any

from scope_shared.errors import BudgetExceeded


def ends_gracefully(stop: BudgetExceeded) -> bool:
    """True when the budget that stopped the call asks to end the run rather than raise."""
    return stop.mode == "end"


def stop_text(stop: BudgetExceeded) -> str:
    """The final message of a run ended by its budget."""
    return f"Stopped: the budget is spent. {stop}"


def stop_metadata(stop: BudgetExceeded) -> dict[str, Any]:
    """What a stop answer carries in its SCOPE metadata (instead of a call record)."""
    return {
        "budget_exhausted": True,
        "model": None,
        "cost": 0.0,
        "ledger": stop.ledger,
        "needed": stop.needed,
        "left": stop.left,
        "explanation": str(stop),
    }
