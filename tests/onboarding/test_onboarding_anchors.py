"""Anchors that inform without biasing: every pool question has the same chance of being suggested,
the suggestion follows the history's benchmark and difficulty mix, a new model's mean outcome on it
estimates its accuracy without bias (and more tightly than random anchors), and the accuracy report
gives that estimate with an interval, overall and per benchmark."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from scope_shared.errors import ScopeError, UnknownModelError
from scope_shared.history import History
from scope_shared.onboarding import estimated_accuracy, sample_anchors, suggest_questions
from scope_shared.onboarding.anchor_choice import bit_reversed

DIM = 12
#: benchmark sizes (unequal on purpose) and how hard each is
BENCHES = {"easy": (240, 0.85), "mid": (120, 0.55), "hard": (60, 0.2)}


def world(seed: int = 0):
    """Questions with a latent difficulty; six known models and one new model of varied ability
    answer them (a logistic item-response model); embeddings carry the benchmark."""
    rng = np.random.default_rng(seed)
    bench, ease = [], []
    for b, (n, level) in BENCHES.items():
        bench += [b] * n
        ease += list(np.log(level / (1 - level)) + rng.normal(0, 1.2, n))
    ease = np.array(ease)
    ability = np.array([-1.0, -0.5, 0.0, 0.3, 0.8, 1.5])
    p = 1 / (1 + np.exp(-(ease[:, None] + ability[None, :])))
    known = (rng.random(p.shape) < p).astype(float)
    new = (rng.random(len(ease)) < 1 / (1 + np.exp(-(ease + 0.4)))).astype(float)
    centres = {b: rng.normal(size=DIM) for b in BENCHES}
    emb = np.stack([centres[b] + 0.5 * rng.normal(size=DIM) for b in bench])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return known, new, bench, emb.astype(np.float32)


def as_history(known: np.ndarray, bench: list[str], emb: np.ndarray, new: np.ndarray | None = None) -> History:
    h = History(DIM, "test")
    ids = h.add_questions([f"{b} question {i}" for i, b in enumerate(bench)], emb, bench)
    for j in range(known.shape[1]):
        h.add_outcome_arrays(ids, f"known{j}", known[:, j])
    if new is not None:
        h.add_outcome_arrays(ids, "new", new)
    return h


def test_every_pool_question_has_the_same_chance():
    known, _, bench, emb = world()
    n, draws = 42, 400
    counts = np.zeros(len(bench))
    for seed in range(draws):
        picked, prob = sample_anchors(known, bench, n, emb, seed)
        assert len(set(picked.tolist())) == n
        counts[picked] += 1
    assert np.allclose(prob, n / len(bench))  # 420 questions, 42 segments of 10
    expected = draws * n / len(bench)  # 40 for every question
    sd = np.sqrt(draws * prob[0] * (1 - prob[0]))
    assert np.abs(counts - expected).max() < 5 * sd
    assert counts.min() > 0  # no question is left out by construction (as the old rule's strata did)


def test_the_suggestion_follows_the_history_mix_of_benchmarks_and_difficulty():
    known, _, bench, emb = world()
    h = as_history(known, bench, emb)
    picks = suggest_questions(h, n=42, seed=5)
    by_bench = Counter(p.benchmark for p in picks)
    for b, (size, _) in BENCHES.items():
        assert abs(by_bench[b] - 42 * size / len(bench)) <= 1  # 24 / 12 / 6: the history's shares
    diff = known.mean(1)
    picked = np.array([p.difficulty for p in picks])
    assert np.allclose(picked, diff[[p.question_id for p in picks]])
    assert abs(picked.mean() - diff.mean()) < 0.02  # not flattened toward the hard questions
    assert abs(np.mean(picked >= 5 / 6) - np.mean(diff >= 5 / 6)) < 0.05  # easy ones in their share
    assert all(p.weight == pytest.approx(len(bench) / 42) for p in picks)
    # any first part of the list is spread too: the first 12 touch every benchmark
    assert {p.benchmark for p in picks[:12]} == set(BENCHES)
    assert sorted(bit_reversed(10).tolist()) == list(range(10))
    with pytest.raises(ScopeError):
        suggest_questions(h, n=0)
    with pytest.raises(ScopeError):
        suggest_questions(History(DIM, "empty"), n=3)


def test_a_new_models_level_comes_out_unbiased_and_tighter_than_with_random_anchors():
    errs = {"suggested": [], "random": [], "equal per benchmark": []}
    for s in range(20):
        known, new, bench, emb = world(s)
        truth, b = new.mean(), np.array(bench)
        for k in range(20):
            rng = np.random.default_rng([s, k])
            picked, _ = sample_anchors(known, bench, 42, emb, seed=100 * s + k)
            equal = np.concatenate([rng.choice(np.flatnonzero(b == name), 14, replace=False) for name in BENCHES])
            errs["suggested"].append(new[picked].mean() - truth)
            errs["random"].append(new[rng.choice(len(bench), 42, replace=False)].mean() - truth)
            errs["equal per benchmark"].append(new[equal].mean() - truth)
    mean = {k: float(np.mean(v)) for k, v in errs.items()}
    rmse = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in errs.items()}
    assert abs(mean["suggested"]) < 0.01, mean
    assert mean["equal per benchmark"] < -0.1  # the old rule's flaw: hard benchmarks over-sampled
    assert rmse["suggested"] < 0.95 * rmse["random"], rmse  # balanced on difficulty: tighter


def test_estimated_accuracy_overall_and_per_benchmark_with_intervals():
    known, new, bench, emb = world(1)
    h = as_history(known, bench, emb)
    picks = suggest_questions(h, n=60, seed=2)
    outcomes = {p.text: float(new[p.question_id]) for p in picks}
    rep = estimated_accuracy(h, outcomes, name="newbie")
    assert rep.model == "newbie" and rep.coverage == 1.0 and rep.overall.n == 60
    assert rep.overall.low <= rep.overall.accuracy <= rep.overall.high
    for e in rep.per_benchmark:
        ids = [p.question_id for p in picks if p.benchmark == e.name]
        assert e.n == len(ids) and e.accuracy == pytest.approx(new[ids].mean())
        assert 0 <= e.low <= e.accuracy <= e.high <= 1
    first = estimated_accuracy(h, {p.text: float(new[p.question_id]) for p in picks[:15]})
    assert first.overall.high - first.overall.low > rep.overall.high - rep.overall.low  # fewer outcomes, wider
    # by question id, with the suggestion's weights (all equal here): the plain mean; post-stratified
    # to the benchmark mix (the default) it is nearly the same, as the suggestion follows that mix
    by_id = estimated_accuracy(h, {p.question_id: float(new[p.question_id]) for p in picks},
                            weights={p.question_id: p.weight for p in picks})
    assert by_id.overall.accuracy == pytest.approx(np.mean([new[p.question_id] for p in picks]))
    assert by_id.overall.accuracy == pytest.approx(rep.overall.accuracy, abs=0.01)
    assert "newbie: estimated accuracy" in rep.lines()[0] and len(rep.lines()) == 1 + len(BENCHES)


def test_estimated_accuracy_corrects_an_unbalanced_set_and_reads_a_model_from_the_history():
    known, new, bench, emb = world(2)
    h = as_history(known, bench, emb, new)
    full = estimated_accuracy(h, "new")  # every outcome: the true accuracy, a tight interval
    assert full.overall.accuracy == pytest.approx(new.mean()) and full.overall.n == len(bench)
    assert full.overall.high - full.overall.low < 0.1
    # 30 outcomes from each benchmark (hard ones over-represented): post-stratified to the history mix
    b = np.array(bench)
    ids = np.concatenate([np.flatnonzero(b == name)[:30] for name in BENCHES])
    rep = estimated_accuracy(h, {int(i): float(new[i]) for i in ids})
    share = {name: size / len(bench) for name, (size, _) in BENCHES.items()}
    expected = sum(share[name] * new[np.flatnonzero(b == name)[:30]].mean() for name in BENCHES)
    assert rep.overall.accuracy == pytest.approx(expected)
    assert abs(rep.overall.accuracy - new.mean()) < abs(new[ids].mean() - new.mean()) + 1e-9
    only_easy = estimated_accuracy(h, {int(i): float(new[i]) for i in np.flatnonzero(b == "easy")[:10]})
    assert only_easy.coverage == pytest.approx(240 / 420) and [r.name for r in only_easy.per_benchmark] == ["easy"]


def test_estimated_accuracy_rejects_bad_input():
    known, _, bench, emb = world(3)
    h = as_history(known, bench, emb)
    with pytest.raises(UnknownModelError):
        estimated_accuracy(h, "nobody")
    with pytest.raises(ScopeError):
        estimated_accuracy(h, {"a question nobody asked": 1.0})
    with pytest.raises(ScopeError):
        estimated_accuracy(h, {0: 1.5})
    with pytest.raises(ScopeError):
        estimated_accuracy(h, {0: 1.0, 1: 0.0}, weights={0: 2.0})  # one weight missing
    with pytest.raises(ScopeError):
        estimated_accuracy(h, {0: 1.0}, weights={0: -1.0})
    with pytest.raises(ScopeError):
        estimated_accuracy(h, {0: 1.0}, weights={0: [1.0, 2.0]})
    with pytest.raises(ScopeError):
        estimated_accuracy(h, {0: "yes"})
    with pytest.raises(ScopeError):
        estimated_accuracy(h, {})


def test_interval_covers_the_truth_at_about_its_confidence():
    hits, total = 0, 0
    for s in range(40):
        known, new, bench, emb = world(100 + s)
        picked, prob = sample_anchors(known, bench, 30, emb, seed=s)
        h = as_history(known, bench, emb)
        rep = estimated_accuracy(h, {int(i): float(new[i]) for i in picked},
                              weights={int(i): 1 / pi for i, pi in zip(picked, prob)})
        hits += rep.overall.low <= new.mean() <= rep.overall.high
        total += 1
    assert hits / total >= 0.85  # a 95% interval; balanced sampling makes it conservative


def test_cli_suggest_then_add_model_prints_the_estimated_accuracy(tmp_path, capsys):
    import json

    from scope_shared.cli import main

    topics = {"math": ["What is 17 * 23?", "Solve 2x + 3 = 11.", "Integrate x^2 from 0 to 3.", "Is 91 prime?"],
              "trivia": ["Who wrote Hamlet?", "What is the capital of Japan?", "Which planet is largest?",
                         "Who painted the Mona Lisa?", "What is the longest river?", "Where is Lima?"]}
    rows = [{"question": q, "model": m, "score": float(m == "big" or t == "trivia"), "benchmark": t}
            for t, qs in topics.items() for q in qs for m in ("small", "big")]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "prices.json").write_text(json.dumps({"small": {"input_price": 0.1, "output_price": 0.1},
                                                      "big": {"input_price": 5, "output_price": 15}}))
    hist = tmp_path / "hist"
    assert main(["history", "build", "--table", str(tmp_path / "rows.jsonl"), "--models", str(tmp_path / "prices.json"),
                 "--out", str(hist)]) == 0
    capsys.readouterr()
    assert main(["history", "suggest", "--history", str(hist), "-n", "5", "--seed", "1"]) == 0
    picks = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(picks) == 5 and all(p["weight"] == pytest.approx(2.0) for p in picks)  # 5 of 10
    assert sorted(p["benchmark"] for p in picks).count("math") == 2  # the history's mix: 4 of 10 maths
    answers = [{"question": p["question"], "correct": float(p["benchmark"] == "trivia"), "weight": p["weight"]}
               for p in picks]  # the new model: trivia only
    (tmp_path / "new.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    (tmp_path / "card.json").write_text(json.dumps({"name": "newbie", "input_price": 0.2, "output_price": 0.2}))
    assert main(["history", "add-model", "--history", str(hist), "--card", str(tmp_path / "card.json"),
                 "--outcomes", str(tmp_path / "new.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "newbie: estimated accuracy 60.0%" in out and "math: 0.0%" in out and "trivia: 100.0%" in out
