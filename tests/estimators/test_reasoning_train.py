"""Building SFT examples from a history, and a few TRL SFT and GRPO steps on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fixtures_reasoning import make_history, make_tiny_lm, single_thread

from scope_shared.cli import main
from scope_shared.errors import ScopeError
from scope_shared.estimators.reasoning import parse_prediction, parse_prompt
from scope_shared.estimators.reasoning.estimator import anchor_examples
from scope_shared.estimators.reasoning.training import build_sft_examples, run_grpo, run_sft, train_reasoner

pytest.importorskip("trl")  # the optional [train] extra

TRAIN_ARGS = {"use_cpu": True, "logging_steps": 1, "gradient_checkpointing": False, "learning_rate": 1e-3}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


@pytest.fixture(scope="module")
def small():
    return make_history(12)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-train"))


def test_sft_examples_leave_one_out_and_match_inference(small):
    hist, emb, _ = small
    examples = build_sft_examples(hist, k=3, traces={(0, "strong-model"): "A supplied trace."})
    assert len(examples) == 2 * len(hist)
    arr = hist.model_arrays("strong-model")
    for ex in examples:
        fields = parse_prompt(ex.prompt)
        assert fields.model == ex.model and fields.question == hist.text(ex.question_id)
        assert hist.text(ex.question_id) not in [a.question for a in fields.examples]  # leave-one-out
        # same anchors as the estimator would show at inference with the question excluded
        anchors = hist.anchors(hist.embeddings[[ex.question_id]], [ex.model], 40, exclude_ids=[ex.question_id])
        assert list(fields.examples) == anchor_examples(anchors, 0, 0, hist, 3)
        target = parse_prediction(ex.completion)
        assert target.length == round(ex.true_length) and target.correct == ex.true_correct
    ex0 = next(e for e in examples if e.question_id == 0 and e.model == "strong-model")
    pos = list(arr.ids).index(0)
    assert ex0.true_correct == bool(arr.scores[pos] >= 0.5)
    assert parse_prediction(ex0.completion).analysis == "A supplied trace."
    other = next(e for e in examples if e.question_id == 1 and e.model == "cheap-model")
    assert "most similar anchor questions correctly" in parse_prediction(other.completion).analysis
    assert len(build_sft_examples(hist, max_examples=5, seed=1)) == 5
    with pytest.raises(ScopeError):
        build_sft_examples(hist, question_ids=[])


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(model, before) -> float:
    return max(float((p.detach() - before[n]).abs().max()) for n, p in model.named_parameters())


@pytest.mark.slow
def test_sft_then_grpo_steps_change_the_weights(small, tiny_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hist, _, _ = small
    tok = AutoTokenizer.from_pretrained(tiny_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, local_files_only=True)
    examples = build_sft_examples(hist, k=2, max_examples=4)
    before = snapshot(model)
    sft = run_sft(model, tok, examples, tmp_path / "sft", max_steps=2, per_device_train_batch_size=2, **TRAIN_ARGS)
    assert changed(sft.model, before) > 0
    assert all(np.isfinite(h["loss"]) for h in sft.state.log_history if "loss" in h)

    # a random tiny model never writes the format, so the paper's rewards are all 0 and GRPO's
    # advantages vanish; a test-only reward with spread (answer length) makes the update non-zero
    def spread(completions, **_):
        return [len(c if isinstance(c, str) else c[-1]["content"]) / 100 for c in completions]

    before = snapshot(sft.model)
    grpo = run_grpo(
        sft.model, tok, examples, tmp_path / "grpo", extra_rewards=[spread], max_steps=1,
        per_device_train_batch_size=2, num_generations=2, max_completion_length=12, **TRAIN_ARGS,
    )
    assert changed(grpo.model, before) > 0
    logged = grpo.state.log_history[0]
    for name in ("format_reward", "correctness_reward", "length_reward"):
        assert f"rewards/{name}/mean" in logged


@pytest.mark.slow
def test_cli_train_reasoner(small, tiny_dir, tmp_path, capsys):
    hist, _, _ = small
    hist.save(tmp_path / "hist")
    cfg = {
        "history": str(tmp_path / "hist"),
        "base_model": str(tiny_dir),
        "output_dir": str(tmp_path / "out"),
        "max_examples": 2,
        "k": 2,
        "sft": {"max_steps": 1, "per_device_train_batch_size": 2, **TRAIN_ARGS},
        "grpo": {"max_steps": 1, "per_device_train_batch_size": 2, "num_generations": 2, "max_completion_length": 8, **TRAIN_ARGS},
    }
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    assert main(["train-reasoner", "--config", str(path)]) == 0
    report = json.loads((tmp_path / "out" / "train_report.json").read_text())
    assert report["examples"] == 2
    for stage in ("sft", "grpo"):
        assert (tmp_path / "out" / stage / "config.json").exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**cfg, "epochs": 3}))
    assert main(["train-reasoner", "--config", str(bad)]) == 2
    assert "unknown train-reasoner config key" in capsys.readouterr().err
    with pytest.raises(ScopeError, match="base_model"):
        train_reasoner({**cfg, "base_model": str(tmp_path / "nope")})
