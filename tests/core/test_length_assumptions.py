"""Answers say when an output length or input count is assumed, and the pack's models get
per-benchmark output-length priors instead of one flat 256 tokens."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DIM, TOPICS, toy_embedder
from scope_shared import History, ModelCard, Outcome, Router, load_pack
from scope_shared.errors import InvalidCardError
from scope_shared.onboarding.length_priors import LLMROUTER9_OUTPUT_TOKENS


def _history(tokens: float | None, cards: list[ModelCard]) -> History:
    emb = toy_embedder()
    h = History(DIM, emb.name)
    for topic in TOPICS:
        for i in range(40):
            text = f"{topic} question number {i}"
            h.add(text, emb.embed_one(text), [Outcome(model=c.name, correct=1.0, output_tokens=tokens) for c in cards],
                  benchmark=topic)
    h.cards = {c.name: c for c in cards}
    return h


def test_lengths_counted_in_the_history_are_not_flagged():
    card = ModelCard(name="m", input_price=1, output_price=2)
    router = Router([card], _history(40.0, [card]), embedder=toy_embedder(), token_counter=lambda t: 7)
    d = router.route("math question number 99")
    e = d.estimates["m"]
    assert e.output_tokens_source == "history" and e.expected_output_tokens == pytest.approx(40.0)
    assert not e.input_tokens_approximated and e.assumptions == "" and "[" not in d.explanation


def test_a_flat_assumed_length_is_said_in_the_estimate_and_the_explanation():
    card = ModelCard(name="m", input_price=1, output_price=2, default_output_tokens=300)
    router = Router([card], _history(None, [card]), embedder=toy_embedder())
    d = router.route("math question number 99")
    e = d.estimates["m"]
    assert e.output_tokens_source == "assumed" and e.expected_output_tokens == 300
    assert e.input_tokens_approximated  # the router's default counter: characters / 4
    assert "300 output tokens assumed" in d.explanation and "characters / 4" in d.explanation
    assert d.summary()["estimates"]["m"]["output_tokens_source"] == "assumed"  # what integrations' metadata carry


def test_per_benchmark_priors_follow_the_benchmark_of_the_anchors():
    card = ModelCard(name="m", input_price=1, output_price=2, output_tokens_by_benchmark={"math": 150, "code": 20})
    router = Router([card], _history(None, [card]), embedder=toy_embedder())
    maths, code, trivia = (router.estimate(f"{t} question number 99")["m"] for t in ("math", "code", "trivia"))
    assert (maths.output_tokens_source, code.output_tokens_source) == ("prior", "prior")
    assert maths.expected_output_tokens == pytest.approx(150, rel=1e-6)
    assert code.expected_output_tokens == pytest.approx(20, rel=1e-6)
    assert trivia.output_tokens_source == "assumed" and trivia.expected_output_tokens == 256  # no prior for trivia
    assert maths.expected_cost > code.expected_cost


def test_bad_priors_are_refused_on_the_card():
    with pytest.raises(InvalidCardError):
        ModelCard.create(name="m", input_price=1, output_price=2, output_tokens_by_benchmark={"math": -1})


def test_the_pack_models_carry_the_shipped_priors_and_routing_uses_them():
    pack = load_pack()
    assert all(c.output_tokens_by_benchmark == LLMROUTER9_OUTPUT_TOKENS for c in pack.cards.values())
    assert "RouterArena" in pack.manifest["notes"][0]
    table = pack.to_table()
    costs = table.call_costs()
    card = table.cards[table.models[0]]
    in_tok = np.array([len(q) / 4 for q in table.questions])
    for bench in ("mbpp", "trivia_qa", "commongen"):
        i = table.benchmarks.index(bench)
        out_tok = LLMROUTER9_OUTPUT_TOKENS.get(bench, 256.0)
        expected = (max(in_tok[i], 0) * card.input_price + out_tok * card.output_price) / 1e6
        assert costs[i, 0] == pytest.approx(expected, rel=0.05)
