"""Which anchors `onboard` asks: drawn from the history it is given (never a question outside it),
seeded, or your own; a warning when they are much harder or easier than the pool; the run time and
the corrected level in the report."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scope_shared import load_pack, onboard
from scope_shared.errors import OnboardingError
from scope_shared.onboarding import AnchorDifficultyWarning
from scope_shared.onboarding.scripted import ScriptedAnswerer

PACK = load_pack()


def card(name: str) -> dict:
    return {"name": name, "input_price": 0.2, "output_price": 0.6}


def held_out_history(seed: int = 0, share: float = 0.3):
    """The pack's history without a random share of its questions (what a user who keeps a test part
    hands to onboard), and the held-out questions' texts."""
    rng = np.random.default_rng(seed)
    out = rng.random(len(PACK)) < share
    history = PACK.history(question_ids=np.flatnonzero(~out))
    return history, {PACK.questions[i].text for i in np.flatnonzero(out)}


def test_onboard_never_adds_a_question_outside_the_given_history():
    history, held_out = held_out_history()
    before = {history.text(i) for i in range(len(history))}
    res = onboard(ScriptedAnswerer("mine", 0.6), card("mine"), history=history, show_progress=False)
    asked = {q.text for q in res.plan.anchors}
    assert len(asked) == 50 and asked <= before and not asked & held_out
    assert len(history) == len(before) and {history.text(i) for i in range(len(history))} == before
    assert history.n_outcomes("mine") == 50
    assert res.plan.pool_size < len(PACK)  # drawn from the history's questions, not the pack's


def test_same_seed_same_anchors_different_seeds_differ():
    history, _ = held_out_history(seed=1)

    def drawn(seed: int) -> list[int]:
        res = onboard(ScriptedAnswerer("s", 0.5), card("s"), history=history, seed=seed, dry_run=True)
        assert res.plan.seed == seed and not res.plan.given
        return [q.id for q in res.plan.anchors]

    first, again, other = drawn(3), drawn(3), drawn(4)
    assert first == again
    assert len(set(first) ^ set(other)) > 40  # mostly other questions
    # the default seed is fixed too: a rerun asks the same questions
    a = onboard(ScriptedAnswerer("s", 0.5), card("s"), history=history, dry_run=True).plan.anchors
    b = onboard(ScriptedAnswerer("s", 0.5), card("s"), history=history, dry_run=True).plan.anchors
    assert [q.id for q in a] == [q.id for q in b]


def test_your_own_anchors_are_asked_as_given():
    picks = [q for q in PACK.questions if q.metric != "code"][:12]
    model = ScriptedAnswerer("own", 0.5)
    given = [picks[0], picks[1].id, picks[2].text] + [q.id for q in picks[3:]] + [picks[0].id]  # one twice
    with pytest.warns(AnchorDifficultyWarning, match="much harder"):  # the pack's first questions are hard ones
        res = onboard(model, card("own"), anchors=given, show_progress=False)
    assert [q.id for q in res.plan.anchors] == [q.id for q in picks] and res.plan.given
    assert sorted(model.calls) == sorted(q.id for q in picks)
    assert res.report.graded == len(picks)


def test_anchors_outside_the_pack_or_ungradable_are_refused():
    with pytest.raises(OnboardingError, match="not a question of pack"):
        onboard(ScriptedAnswerer("x", 0.5), card("x"), anchors=["What is the airspeed of a swallow?"], dry_run=True)
    with pytest.raises(OnboardingError, match="not a question of pack"):
        onboard(ScriptedAnswerer("x", 0.5), card("x"), anchors=[len(PACK) + 5], dry_run=True)
    code = next(q for q in PACK.questions if q.metric == "code")
    with pytest.raises(OnboardingError, match="run_code=True"):
        onboard(ScriptedAnswerer("x", 0.5), card("x"), anchors=[code.id], dry_run=True)
    with pytest.raises(OnboardingError, match="empty"):
        onboard(ScriptedAnswerer("x", 0.5), card("x"), anchors=[], dry_run=True)
    with pytest.raises(OnboardingError, match="anchors must be a list"):
        onboard(ScriptedAnswerer("x", 0.5), card("x"), anchors="q1", dry_run=True)
    with pytest.raises(OnboardingError, match="seed must be an integer"):
        onboard(ScriptedAnswerer("x", 0.5), card("x"), seed=1.5, dry_run=True)


def test_much_easier_anchors_are_warned_about_and_a_fair_draw_is_not():
    mean = np.nanmean(PACK.scores, 1)
    gradable = np.array([q.metric != "code" for q in PACK.questions])
    easiest = np.flatnonzero(gradable & (mean >= 0.99))[:40].tolist()
    with pytest.warns(AnchorDifficultyWarning, match="much easier than the pool"):
        res = onboard(ScriptedAnswerer("easy", 0.5), card("easy"), anchors=easiest, dry_run=True)
    assert res.plan.anchor_difficulty > res.plan.pool_difficulty + 0.3
    assert "much easier" in res.plan.text() and "much easier" in res.report.text()
    hardest = np.flatnonzero(gradable & (mean <= 0.01))[:40].tolist()
    with pytest.warns(AnchorDifficultyWarning, match="much harder"):
        onboard(ScriptedAnswerer("hard", 0.5), card("hard"), anchors=hardest, dry_run=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AnchorDifficultyWarning)
        fair = onboard(ScriptedAnswerer("fair", 0.5), card("fair"), dry_run=True)
    assert fair.plan.difficulty_warning is None
    assert abs(fair.plan.anchor_difficulty - fair.plan.pool_difficulty) < 0.05


def test_report_gives_the_run_time_and_the_corrected_level():
    history, _ = held_out_history(seed=2)
    res = onboard(ScriptedAnswerer("timed", 0.5), card("timed"), history=history, show_progress=False)
    rep = res.report
    assert rep.run_time_s > 0 and "run time" in rep.text()
    assert rep.level is not None and rep.level.method == "irt" and rep.level.n == 50
    assert rep.level.low < rep.level.level < rep.level.high
    assert "corrected for the anchors' difficulty" in rep.text()
    assert rep.to_dict()["run_time_s"] == rep.run_time_s


def test_command_line_seed_and_own_anchor_questions(tmp_path, capsys):
    from scope_shared.cli import main

    base = ["onboard", "--dry-run", "--name", "planned", "--input-price", "1", "--output-price", "3"]
    assert main([*base, "--seed", "7"]) == 0
    printed = capsys.readouterr().out
    assert "seed 7" in printed and "50 anchors" in printed
    picks = [q for q in PACK.questions if q.metric != "code" and "\n" not in q.text.strip()][100:106]
    listing = tmp_path / "anchors.txt"
    listing.write_text("\n".join([str(picks[0].id), picks[1].text] + [str(q.id) for q in picks[2:]]) + "\n", encoding="utf-8")
    assert main([*base, "--anchor-questions", str(listing)]) == 0
    printed = capsys.readouterr().out
    assert "6 anchors from pack llmrouter-9, given" in printed
    empty = tmp_path / "none.txt"
    empty.write_text("\n", encoding="utf-8")
    assert main([*base, "--anchor-questions", str(empty)]) == 2
    assert "lists no question" in capsys.readouterr().err
