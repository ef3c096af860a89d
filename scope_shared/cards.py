"""Model cards (what a candidate costs) and outcomes (what a model did on one question)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scope_shared.errors import HistoryDataError, InvalidCardError
from scope_shared.query import unencodable_at


def _clean_name(v: str, what: str) -> str:
    """Strip a name; reject an empty one or one that cannot be encoded (a lone surrogate)."""
    v = v.strip()
    if not v:
        raise ValueError(f"{what} is empty")
    if unencodable_at(v) is not None:
        raise ValueError(f"{what} cannot be encoded as UTF-8 (lone surrogate)")
    return v


class ModelCard(BaseModel):
    """A candidate model: its name and price in USD per million input / output tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    input_price: float = Field(description="USD per million input tokens")
    output_price: float = Field(description="USD per million output tokens")
    tags: tuple[str, ...] = ()
    context_limit: int | None = Field(default=None, gt=0)
    default_output_tokens: float | None = Field(
        default=None,
        gt=0,
        description="Output tokens assumed when the history has no token counts for this model.",
    )
    output_tokens_by_benchmark: dict[str, float] | None = Field(
        default=None,
        description="Output-length priors by benchmark, used (near questions of those benchmarks) when the "
        "history has no token counts for this model; ahead of default_output_tokens.",
    )
    supports_tools: bool | None = Field(
        default=None,
        description="Whether the model can call tools; None: let the integration tell from the model object.",
    )

    @field_validator("name")
    @classmethod
    def _strip_name(cls, v: str) -> str:
        return _clean_name(v, "model name")

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_clean_name(t, "tag") for t in v)

    @field_validator("output_tokens_by_benchmark")
    @classmethod
    def _check_length_priors(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return None
        bad = {k: t for k, t in v.items() if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0)}
        if bad:
            raise ValueError(f"output-length priors must be finite numbers > 0, got {bad}")
        return {str(k): float(t) for k, t in v.items()}

    @field_validator("input_price", "output_price")
    @classmethod
    def _check_price(cls, v: float) -> float:
        if v is None or not math.isfinite(v) or v < 0:
            raise ValueError(f"price must be a finite number >= 0, got {v!r}")
        return float(v)

    @classmethod
    def create(cls, **fields: Any) -> "ModelCard":
        """Build a card, turning pydantic's validation error into an `InvalidCardError`."""
        try:
            return cls(**fields)
        except (ValidationError, TypeError) as exc:
            if isinstance(exc, TypeError):
                raise InvalidCardError(f"invalid model card: {exc}") from None
            name = fields.get("name", "<unnamed>")
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'card'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidCardError(f"invalid model card {name!r}: {problems}") from None

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        """USD cost of one call with these token counts."""
        return (input_tokens * self.input_price + output_tokens * self.output_price) / 1e6


def to_cards(cards: Iterable[ModelCard | Mapping[str, Any]]) -> dict[str, ModelCard]:
    """Validate cards (objects or dicts) into a name -> card mapping; names must be unique."""
    if isinstance(cards, (str, bytes, Mapping)) or not isinstance(cards, Iterable):
        raise InvalidCardError(f"cards must be a list of ModelCard objects or dicts, got {type(cards).__name__}")
    out: dict[str, ModelCard] = {}
    for c in cards:
        if not isinstance(c, (ModelCard, Mapping)):
            raise InvalidCardError(f"a model card must be a ModelCard or a dict, got {type(c).__name__}")
        card = c if isinstance(c, ModelCard) else ModelCard.create(**{str(k): v for k, v in c.items()})
        if card.name in out:
            raise InvalidCardError(f"duplicate model card name {card.name!r}")
        out[card.name] = card
    if not out:
        raise InvalidCardError("no model cards given: a router needs at least one candidate")
    return out


class Outcome(BaseModel):
    """What one model did on one question."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    correct: float = Field(ge=0.0, le=1.0, description="score in [0, 1]")
    output_tokens: float | None = Field(default=None, ge=0)
    input_tokens: float | None = Field(default=None, ge=0)
    latency_s: float | None = Field(default=None, ge=0)
    source: str = "benchmark"

    @field_validator("model")
    @classmethod
    def _strip_model(cls, v: str) -> str:
        return _clean_name(v, "model name")  # "cheap " is the model "cheap", not a new one

    @field_validator("source")
    @classmethod
    def _strip_source(cls, v: str) -> str:
        return _clean_name(v, "source")

    @field_validator("correct", "output_tokens", "input_tokens", "latency_s")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be finite")
        return v

    @classmethod
    def create(cls, **fields: Any) -> "Outcome":
        """Build an outcome, turning pydantic's validation error into a `ScopeError`."""
        try:
            return cls(**fields)
        except (ValidationError, TypeError) as exc:
            if isinstance(exc, TypeError):
                raise HistoryDataError(f"invalid outcome: {exc}") from None
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise HistoryDataError(f"invalid outcome for model {fields.get('model')!r}: {problems}") from None
