"""What the router predicts (`Estimate`) and what it decides (`Decision`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Estimate(BaseModel):
    """Pre-hoc prediction for one (query, model): chance of success, output length, cost."""

    model_config = ConfigDict(frozen=True)

    model: str
    p_correct: float = Field(ge=0.0, le=1.0)
    expected_output_tokens: float = Field(ge=0.0)
    input_tokens: float = Field(ge=0.0)
    expected_cost: float = Field(ge=0.0, description="USD, from the card's prices")
    estimator: str = "knn"
    rationale: str | None = None
    n_anchors: int = 0
    output_tokens_source: str = Field(
        default="history",
        description="where expected_output_tokens came from: 'history' (anchors' token counts), 'prior' (the "
        "card's per-benchmark length prior) or 'assumed' (one default length)",
    )
    input_tokens_approximated: bool = Field(
        default=False, description="input_tokens is characters / 4, not a tokenizer's count")

    @property
    def assumptions(self) -> str:
        """What this estimate's cost rests on that was not measured, in words (``""`` if nothing)."""
        from scope_shared.routing.lengths import assumption_note

        return assumption_note(self.expected_output_tokens, self.output_tokens_source, self.input_tokens_approximated)


class Decision(BaseModel):
    """The router's choice for one query, with the ranked fallbacks and every estimate."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="the chosen model")
    ranking: tuple[str, ...] = Field(description="all candidates, best first; ranking[0] == model")
    estimates: dict[str, Estimate]
    knob: dict[str, Any] = Field(description="the knob in force, e.g. {'tradeoff': 50.0}")
    explanation: str
    budget_left: float | None = None
    fallback_to_cheapest: bool = False
    over_max_cost: bool = Field(default=False, description="no candidate fit the max_cost knob: routed to the cheapest")

    @property
    def chosen(self) -> Estimate:
        """The estimate of the chosen model."""
        return self.estimates[self.model]

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """Candidates to try, in order, if the chosen one fails."""
        return self.ranking[1:]

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary for metadata / tracing."""
        return {
            "model": self.model,
            "ranking": list(self.ranking),
            "knob": dict(self.knob),
            "explanation": self.explanation,
            "expected_cost": self.chosen.expected_cost,
            "p_correct": self.chosen.p_correct,
            "budget_left": self.budget_left,
            "fallback_to_cheapest": self.fallback_to_cheapest,
            "over_max_cost": self.over_max_cost,
            "estimates": {m: e.model_dump() for m, e in self.estimates.items()},
        }
