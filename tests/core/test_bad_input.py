"""Every bad input raises the library's own exception, naming the problem; no store is modified."""

from __future__ import annotations

import math

import pytest
from conftest import CARDS, toy_embedder, toy_history

from scope_shared import ModelCard, Router, ScopeError
from scope_shared.errors import InvalidCardError, InvalidKnobError, InvalidQueryError, UnknownModelError


@pytest.mark.parametrize("query", ["", "   \n\t", None, 42, b"bytes", ["list"]])
def test_bad_queries(router, query):
    with pytest.raises(InvalidQueryError):
        router.route(query)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        router.estimate(query)  # type: ignore[arg-type]


def test_bad_query_in_batch_names_its_position(router):
    with pytest.raises(InvalidQueryError, match="query #1"):
        router.route_batch(["fine", " "])


def test_unknown_model(router):
    with pytest.raises(UnknownModelError, match="unknown model 'gpt-9'"):
        router.route("math", candidates=["gpt-9"])
    with pytest.raises(UnknownModelError):
        router.record_outcome("math", "gpt-9", 1.0)


@pytest.mark.parametrize(
    "fields,msg",
    [
        ({"name": "a", "input_price": -1, "output_price": 1}, "input_price"),
        ({"name": "a", "input_price": 1}, "output_price"),
        ({"name": "a", "input_price": math.nan, "output_price": 1}, "finite"),
        ({"name": " ", "input_price": 1, "output_price": 1}, "name"),
    ],
)
def test_bad_cards(fields, msg):
    with pytest.raises(InvalidCardError, match=msg):
        ModelCard.create(**fields)
    with pytest.raises(InvalidCardError):
        Router([fields], toy_history(), embedder=toy_embedder())


def test_duplicate_and_missing_cards():
    with pytest.raises(InvalidCardError, match="duplicate"):
        Router([CARDS[0], CARDS[0]], toy_history(), embedder=toy_embedder())
    with pytest.raises(InvalidCardError, match="no model cards"):
        Router([], toy_history(), embedder=toy_embedder())
    with pytest.raises(InvalidCardError, match="no outcomes in the history for 'ghost'"):
        Router([*CARDS, ModelCard(name="ghost", input_price=1, output_price=1)], toy_history(), embedder=toy_embedder())


@pytest.mark.parametrize(
    "knob,msg",
    [
        ({"max_cost": -1.0}, ">= 0"),
        ({"min_accuracy": 1.5}, r"\[0, 1\]"),
        ({"alpha": 2}, r"\[0, 1\]"),
        ({"accuracy_margin": 1.5}, r"\[0, 1\]"),
        ({"tradeoff": math.inf}, "finite"),
        ({"tradeoff": "high"}, "number"),
        ({"tradeoff": 1.0, "min_accuracy": 0.5}, "one knob at a time"),
    ],
)
def test_knobs_out_of_range(router, knob, msg):
    with pytest.raises(InvalidKnobError, match=msg):
        router.route("math question", knob=knob)


def test_failed_operations_do_not_modify_history(router):
    n, records = len(router.history), len(router.history.records)
    for bad in [lambda: router.record_outcome("", "cheap", 1.0),
                lambda: router.record_outcome("q", "cheap", 1.5),
                lambda: router.record_outcome("q", "nobody", 1.0),
                lambda: router.add_model({"name": "x", "input_price": -1, "output_price": 1}, {"q": 1.0}),
                lambda: router.add_model({"name": "x", "input_price": 1, "output_price": 1}, {"q": 7.0})]:
        with pytest.raises(ScopeError):
            bad()
    assert len(router.history) == n and len(router.history.records) == records


def test_errors_are_value_errors(router):
    """Callers that catch ValueError keep working; ours are also distinguishable."""
    with pytest.raises(ValueError):
        router.route("")
