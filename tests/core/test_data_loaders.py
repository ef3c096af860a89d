"""Loaders: llmrouter-9 pooled and deduplicated, splits without leakage, users' own tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import toy_embedder

from scope_shared import ScopeError
from scope_shared.data import dataset_path, load_llmrouter9, load_routing_table, stratified_split


@pytest.fixture(scope="module")
def llmrouter():
    try:
        path = dataset_path("llmrouter-9")
    except ScopeError as exc:  # pragma: no cover - the data sits beside every checkout here
        pytest.skip(f"real data not available: {exc}")
    return load_llmrouter9(path)


def test_llmrouter9_is_pooled_and_deduplicated(llmrouter):
    assert len(llmrouter) == 5608 + 500 - 119  # the README's overlap, merged
    assert len(set(llmrouter.questions)) == len(llmrouter)
    assert len(llmrouter.models) == 9 and np.isfinite(llmrouter.scores).all()
    assert set(llmrouter.benchmarks) >= {"mmlu", "gsm8k", "human_eval", "gpqa"}
    assert "no output-token counts" in llmrouter.notes[0]
    card = llmrouter.cards["gemma-2-9b-it"]
    assert card.input_price == 0.1 and card.default_output_tokens == 256


def test_split_has_no_leak_and_is_stratified(llmrouter):
    train, test = llmrouter.split(0.2, seed=3)
    assert not set(train.questions) & set(test.questions)
    assert len(train) + len(test) == len(llmrouter)
    for b in set(llmrouter.benchmarks):
        share = test.benchmarks.count(b) / llmrouter.benchmarks.count(b)
        assert 0.1 <= share <= 0.34
    again = llmrouter.split(0.2, seed=3)[1]
    assert again.questions == test.questions  # deterministic under the seed


def test_no_held_out_question_text_is_in_the_history(llmrouter):
    small = llmrouter.subset(np.arange(0, len(llmrouter), 10))
    train, test = small.split(0.25, seed=0)
    history = train.to_history(toy_embedder(), show_progress=False)
    assert len(history) == len(train)
    assert not any(q in history for q in test.questions)


def test_stratified_split_small_groups():
    tr, te = stratified_split(["a"] * 5 + ["b"] * 2 + ["c"], 0.2, seed=0)
    assert len(set(tr) & set(te)) == 0 and len(tr) + len(te) == 8
    with pytest.raises(ScopeError, match="test_size"):
        stratified_split(["a"], 1.5, 0)


def _write_table(tmp_path, rows, prices):
    rp, mp = tmp_path / "rows.jsonl", tmp_path / "prices.json"
    rp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mp.write_text(json.dumps(prices))
    return rp, mp


def test_generic_table_round_trip(tmp_path):
    rows = [
        {"question": "2+2?", "model": "a", "score": 1, "output_tokens": 10, "benchmark": "math"},
        {"question": "2+2?", "model": "b", "score": 0, "cost": 0.001, "benchmark": "math"},
        {"question": "capital of France?", "model": "a", "score": 1},
        {"question": "2+2?", "model": "a", "score": 0, "output_tokens": 30},
    ]
    rp, mp = _write_table(tmp_path, rows, {"a": {"input_price": 1, "output_price": 2}, "b": {"input_price": 3, "output_price": 4}})
    t = load_routing_table(rp, mp)
    assert t.models == ["a", "b"] and len(t) == 2
    assert t.scores[0].tolist() == [0.5, 0.0] and np.isnan(t.scores[1, 1])
    assert t.output_tokens[0, 0] == pytest.approx(20) and t.cost[0, 1] == pytest.approx(0.001)
    costs = t.call_costs()
    assert costs[0, 1] == pytest.approx(0.001)  # real cost wins
    # csv form
    import pandas as pd

    pd.DataFrame(rows).to_csv(tmp_path / "rows.csv", index=False)
    assert load_routing_table(tmp_path / "rows.csv", mp).models == ["a", "b"]


@pytest.mark.parametrize(
    "rows,prices,msg",
    [
        ([{"question": "q", "model": "z", "score": 1}], {"a": {"input_price": 1, "output_price": 1}}, "without a price"),
        ([{"question": "q", "model": "a"}], {"a": {"input_price": 1, "output_price": 1}}, "'score' is missing"),
        ([{"question": "q", "model": "a", "score": 3}], {"a": {"input_price": 1, "output_price": 1}}, "outside"),
        ([{"question": "q", "model": "a", "score": 1}], {"a": {"input_price": -1, "output_price": 1}}, "input_price"),
    ],
)
def test_generic_table_errors(tmp_path, rows, prices, msg):
    rp, mp = _write_table(tmp_path, rows, prices)
    with pytest.raises(ScopeError, match=msg):
        load_routing_table(rp, mp)
    with pytest.raises(ScopeError, match="does not exist"):
        load_routing_table(tmp_path / "nope.jsonl", mp)
