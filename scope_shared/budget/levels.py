"""The budgets one call spends from, taken together: holds, charges and the modes, across levels.

A call inside a chain's budget inside a team's budget is held and charged in both. `Levels` is
that list of ledgers (innermost first, each one once) and writes the rules once:

- room: the smallest of what is left in each, divided by the largest hold factor;
- a hold is taken level by level; if one level cannot hold it, the holds already taken are
  released and its `BudgetExceeded` is raised (so a capping budget is never overdrawn by a hold,
  and a failed hold leaves every level as it was);
- when the cheapest candidate fits nowhere, a *capping* level (mode raise or end) stops the call;
  if only soft levels are short, the call goes ahead on the cheapest candidate.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from scope_shared.budget.base import EPS, BaseLedger, LedgerEntry, Reservation, check_amount
from scope_shared.errors import BudgetExceeded


class Levels:
    """Distinct ledgers, innermost first, that one call spends from."""

    def __init__(self, ledgers: Iterable[BaseLedger]) -> None:
        seen: dict[int, BaseLedger] = {}
        for ledger in ledgers:
            seen.setdefault(id(ledger), ledger)
        self.ledgers: tuple[BaseLedger, ...] = tuple(seen.values())

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.ledgers)

    def __len__(self) -> int:
        return len(self.ledgers)

    @property
    def hold_factor(self) -> float:
        return max((lv.hold_factor for lv in self.ledgers), default=1.0)

    @property
    def room(self) -> float:
        left = min((lv.remaining for lv in self.ledgers), default=math.inf)
        return left / self.hold_factor if math.isfinite(left) else math.inf

    def reserve(self, amount: float, force: bool = False) -> Reservation:
        amount = check_amount(amount, "a hold")
        taken: list[tuple[BaseLedger, Hashable]] = []
        try:
            for level in self.ledgers:
                taken.append((level, level._open_hold(amount, force and not level.capping)))
        except BaseException:
            for level, key in taken:
                level._close_hold(key, None)
            raise
        return Reservation(taken, amount)

    def charge(self, cost: float, entry: Mapping[str, Any]) -> LedgerEntry:
        e = LedgerEntry.build(cost, entry)
        for level in self.ledgers:
            level._record(e)
        return e

    def short(self, cost: float) -> list[BaseLedger]:
        """Levels that cannot hold a call expected to cost ``cost`` (its hold is cost x factor)."""
        hold = cost * self.hold_factor
        return [lv for lv in self.ledgers if hold > lv.remaining + EPS]

    def check_fits(self, cost: float, model: str) -> None:
        """Raise `BudgetExceeded` if a capping level cannot hold ``model``'s ``cost``."""
        level = _strictest(lv for lv in self.short(cost) if lv.capping)
        if level is None:
            return
        factor = self.hold_factor
        raise BudgetExceeded(
            f"{_label(level)} spent: ${max(level.remaining, 0.0):.6f} left of ${level.budget:.6f}, the "
            f"cheapest candidate ({model}) is expected to cost ${cost:.6f}"
            + (f" (held x{factor:.2f}: calls have billed more than they held)" if factor > 1 else ""),
            ledger=level.name,
            mode=level.mode,
            needed=cost,
            left=level.remaining,
        )

    def enforce(self, reason: str, needed: float) -> None:
        """Raise `BudgetExceeded(reason)` if any level is capping."""
        level = _strictest(lv for lv in self.ledgers if lv.capping)
        if level is not None:
            raise BudgetExceeded(
                f"{reason}; {_label(level)} is a cap", ledger=level.name, mode=level.mode,
                needed=needed, left=level.remaining,
            )


def _label(level: BaseLedger) -> str:
    return "budget" if level.name is None else f"budget {level.name!r}"


def _strictest(capping: Iterable[BaseLedger]) -> BaseLedger | None:
    """The level that names a stop: the innermost raise-mode one, else the innermost end-mode one."""
    levels = list(capping)
    return next((lv for lv in levels if lv.mode == "raise"), levels[0] if levels else None)
