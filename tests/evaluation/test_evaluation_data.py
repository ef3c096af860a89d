"""Loaders of the bundled real data sets (small in-test fixtures, and the real files where present)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from scope_shared.data import (
    load_alpacaeval_lengths,
    load_llmrouter9,
    load_routerarena2,
    load_routerbench11,
)
from scope_shared.errors import ScopeError
from scope_shared.evaluation.harness import make_split

DATA = Path(os.environ.get("SCOPE_DATA_DIR", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


def _write_routerbench(root: Path) -> None:
    root.mkdir()
    prompts = {"a.1": "['Q one?\\nAnswer:']", "a.2": "['Q two?']", "a.3": "['Q one?\\nAnswer:']", "m.1": "['Write code']"}
    with open(root / "queries.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sample_id", "benchmark", "split", "prompt"])
        for sid, p in prompts.items():
            w.writerow([sid, "arc" if sid.startswith("a") else "mbpp", "test", p])
    rows = []
    for sid in prompts:
        for m, (pi, po) in {"cheap": (1.0, 2.0), "dear": (10.0, 30.0)}.items():
            in_c, out_c = 400.0 if sid != "a.2" else 800.0, 40.0 if sid != "m.1" else 400.0
            score = "1.0" if m == "dear" or sid == "a.1" else "0.0"
            cost = (in_c / 4 * pi + out_c / 4 * po) / 1e6
            rows.append([sid, "x", "test", m, score, cost, out_c, out_c / 5, in_c])
    rows.append(["m.2", "mbpp", "test", "cheap", "", 0.1, 1, 1, 1])  # blank score: dropped
    with open(root / "routerbench_long.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sample_id", "benchmark", "split", "model", "score", "total_cost_usd", "response_chars",
                    "response_words", "prompt_chars"])
        w.writerows(rows)


def test_routerbench_loader_merges_duplicates_and_recovers_prices(tmp_path):
    root = tmp_path / "rb"
    _write_routerbench(root)
    t = load_routerbench11(root)
    assert t.models == ["cheap", "dear"]
    assert t.questions == ["Q one?\nAnswer:", "Q two?", "Write code"]  # list literal unwrapped, a.1 == a.3 merged
    assert t.benchmarks == ["arc", "arc", "mbpp"]
    assert t.scores[0].tolist() == [0.5, 1.0]  # duplicate prompt: outcomes averaged
    assert t.output_tokens[2].tolist() == [100.0, 100.0]  # response chars / 4
    assert t.cards["cheap"].input_price == pytest.approx(1.0, rel=1e-6)
    assert t.cards["dear"].output_price == pytest.approx(30.0, rel=1e-6)
    assert np.allclose(t.call_costs(), t.cost)  # real costs win
    with pytest.raises(ScopeError):
        load_routerbench11(tmp_path)


def test_routerarena_loader(tmp_path):
    root = tmp_path / "ra"
    root.mkdir()
    (root / "cost.json").write_text(json.dumps({
        "m1": {"input_token_price_per_million": 1, "output_token_price_per_million": 2},
        "m2": {"input_token_price_per_million": 3, "output_token_price_per_million": 4}}))
    for m, score in (("m1", -0.1), ("m2", 1.0)):
        lines = [json.dumps({"global_index": f"MMLUPro_law_{i}", "question": f"q{i}", "success": True,
                             "token_usage": {"input_tokens": 10, "output_tokens": 7 * (i + 1)},
                             "evaluation_result": {"score": score, "inference_cost": 0.001 * (i + 1)}})
                 for i in range(3)]
        (root / f"{m}.jsonl").write_text("\n".join(lines) + "\n")
    t = load_routerarena2(root)
    assert t.models == ["m1", "m2"] and len(t) == 3
    assert t.benchmarks == ["MMLUPro_law"] * 3
    assert t.scores[:, 0].tolist() == [0.0, 0.0, 0.0]  # clipped into [0, 1]
    assert t.output_tokens[:, 1].tolist() == [7.0, 14.0, 21.0]
    assert t.cost[2, 0] == pytest.approx(0.003)
    assert t.cards["m2"].output_price == 4


needs_data = pytest.mark.skipif(not (DATA / "llmrouter-9").is_dir(), reason="bundled real data not present")


@needs_data
def test_real_llmrouter9_split_keeps_test_text_out_of_history():
    t = load_llmrouter9(DATA / "llmrouter-9")
    for seed in range(5):
        split, _ = make_split(t, np.zeros((len(t), 4), np.float32), seed, unseen=["qwen2.5-7b-instruct"], n_anchors=50)
        assert not set(split.hist_questions) & set(split.test_questions)
        assert np.isfinite(split.hist_scores[:, t.models.index("qwen2.5-7b-instruct")]).sum() == 50


@needs_data
def test_real_files_load():
    rb = load_routerbench11(DATA / "routerbench-11")
    assert (len(rb), len(rb.models)) == (3162, 11)  # 14 blank-score questions dropped, 2 duplicates merged
    assert np.isfinite(rb.scores).all() and np.isfinite(rb.cost).all()
    gpt4 = rb.cards["gpt-4-1106-preview"]
    assert 5 < gpt4.input_price < 15 and 20 < gpt4.output_price < 40  # public price $10/$30
    ra = load_routerarena2(DATA / "routerarena-2")
    assert (len(ra), len(ra.models)) == (809, 2)
    assert np.nanmedian(ra.output_tokens, 0).tolist() == [73.0, 59.0]  # the README's medians
    ae = load_alpacaeval_lengths(DATA / "alpacaeval-lengths", models=["gpt4_1106_preview", "claude-2"])
    assert len(ae) == 805 and np.isnan(ae.scores).all() and (ae.output_tokens > 0).mean() > 0.99
    with pytest.raises(ScopeError):
        load_alpacaeval_lengths(DATA / "alpacaeval-lengths", models=["NullModel"])
