"""The default knob's margin, calibrated on the router's own history.

The default knob is ``accuracy_margin``: the cheapest candidate whose predicted accuracy is within a
margin of the best candidate's on the query. How large a margin keeps the promise "as accurate as the
best candidate" depends on the pool: where one model is far ahead, a cheap model close to it in
*predicted* accuracy is often wrong; where the cheap ones are nearly as good, a margin saves much.
No fixed margin suits both (``benchmarks/default_margin.py``), but a router can measure it on the
history questions its candidates have all answered: the estimator predicts each as if it were new
(`Estimator.history_estimates`), the margin rule picks per question, and the outcomes there say what
accuracy each margin keeps. The default margin is the largest on `MARGIN_GRID` whose accuracy, and
that of every smaller one, stays within `TOLERANCE` of the best single candidate's on those
questions.

A candidate known only from its anchors (an onboarded model) answered too few history questions to
measure on. The history's known models stand in for such candidates: each is played by the known
non-candidate model nearest its level, estimated as if known only from the candidate's own questions
(`Estimator.onboarded_estimates`), scored by what it really did and priced by the candidate's card. That
world has the candidates' levels and prices and the noise so few outcomes give the estimates; its
stand-ins are not the candidates, so the margin holds there the accuracy of margin 0 (the best candidate
*predicted*, what the router would otherwise pick) rather than that of a best column.
Without `MIN_QUESTIONS` questions even so (no known model left to stand in, as when every known model is
a candidate too) or with an estimator that cannot hide a question from itself, the margin is
`DEFAULT_ACCURACY_MARGIN`.

The margin is measured on questions like the history's. A query less like the history than all but
`FAR_SHARE` of them gets `DEFAULT_ACCURACY_MARGIN` instead: there the estimates, and the margin, were
never checked. "Like the history" is `local_closeness`: how close a question is to its nearest history
questions, relative to how close those are to theirs (a local outlier score): raw closeness tells a
kind of question the history lacks from a sparse corner of the history far less well
(``benchmarks/far_queries.py``, benchmarks left out of llmrouter-9's history: AUROC 0.79 against 0.66).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.estimators.base import Estimator
from scope_shared.estimators.levels import model_levels
from scope_shared.estimators.panel_features import N_CLOSE
from scope_shared.history import History
from scope_shared.routing.knobs import DEFAULT_ACCURACY_MARGIN, DEFAULT_KNOB, Knob, make_knob
from scope_shared.routing.policies import margin_choices
from scope_shared.routing.validation import counted_tokens
from scope_shared.tokens import TokenCounter

#: margins tried, smallest first
MARGIN_GRID: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(21))
#: the most accuracy (a share) the default may give up against the best single candidate there: 1 point,
#: the largest of 0, 0.5 and 1 that kept within 1 point of the best model's accuracy every validation
#: setting margin 0 keeps there (``benchmarks/default_margin.py``, with the panel mixed with kNN)
TOLERANCE = 0.01
#: history questions every candidate answered, at least, to calibrate on
MIN_QUESTIONS = 300
#: a query less close to the history than this share of the calibration questions gets the fixed margin
FAR_SHARE = 0.25
#: calibration questions (about) whose local closeness sets the threshold
CLOSENESS_SAMPLE = 250


@dataclass(frozen=True)
class MarginCalibration:
    """The default knob a router chose, and on what: ``questions`` history questions every
    candidate answered, where the margin kept accuracy ``gap`` (a share, <= 0 is below) of the best
    single candidate's (``None``: not calibrated, ``reason`` says why)."""

    knob: Knob
    questions: int
    gap: float | None
    reason: str
    #: queries whose `local_closeness` is below this get the fixed margin (-inf: none)
    min_closeness: float = -math.inf

    def knobs_for(self, closeness: np.ndarray) -> list[Knob]:
        """The default knob of each query, by its `local_closeness` (see the module doc)."""
        return [self.knob if c >= self.min_closeness else DEFAULT_KNOB for c in np.asarray(closeness).tolist()]


def largest_safe_margin(p: np.ndarray, correct: np.ndarray, cost: np.ndarray, tolerance: float = TOLERANCE,
                        grid: Sequence[float] = MARGIN_GRID, against_first: bool = False) -> tuple[float, float]:
    """The largest margin of ``grid`` (ascending) that, like every smaller one, keeps the realised
    accuracy of the margin rule's picks within ``tolerance`` of the best single column's (with
    ``against_first``, of the first margin's), and that margin's gap to it. ``p``, ``correct`` and
    ``cost`` are (questions, candidates)."""
    rows = np.arange(len(p))
    first = float(correct[rows, margin_choices(grid[0], p, cost)].mean())
    best = first if against_first else float(correct.mean(0).max())
    chosen, gap = float(grid[0]), first - best
    for m in grid[1:]:
        g = float(correct[rows, margin_choices(m, p, cost)].mean()) - best
        if g < -tolerance:
            break
        chosen, gap = float(m), g
    return chosen, gap


def calibrate_margin(estimator: Estimator, history: History, cards: Mapping[str, ModelCard],
                     count_tokens: TokenCounter, default_output_tokens: float,
                     tolerance: float = TOLERANCE, far_share: float = FAR_SHARE) -> MarginCalibration:
    """The default knob for routing among ``cards`` (see the module doc)."""
    models = list(cards)
    if len(models) < 2:
        return MarginCalibration(DEFAULT_KNOB, 0, None, "one candidate")
    got = estimator.history_estimates(history, models)
    if got is None:
        return MarginCalibration(DEFAULT_KNOB, 0, None, f"the {estimator.name} estimator cannot estimate history questions as new")
    ids, p = got.ids, got.p_correct
    scores = history.score_matrix(models)[ids]
    answered = ~np.isnan(scores).any(1)
    stand = _with_stand_ins(estimator, history, models, ids, p, scores) if answered.sum() < MIN_QUESTIONS else None
    on = "history questions every candidate answered"
    if stand is not None:
        p, scores, names = stand
        answered = ~np.isnan(scores).any(1)
        on = ("history questions, with " + ", ".join(f"{k} played by {v}" for k, v in names.items())
              + " as if known from the same questions")
    n = int(answered.sum())
    if n < MIN_QUESTIONS:
        return MarginCalibration(DEFAULT_KNOB, n, None, f"only {n} of the {len(ids)} history questions it estimates answered by "
                                 f"every candidate{' or its stand-in' if stand else ''} (< {MIN_QUESTIONS})"
                                 f"{'' if stand else ', and no known model to stand in for those with few'}")
    ids, p, correct = ids[answered], p[answered], scores[answered].astype(np.float64)
    cost = expected_costs(history, ids, cards, count_tokens, default_output_tokens)
    margin, gap = largest_safe_margin(p, correct, cost, tolerance, against_first=stand is not None)
    reason = (f"calibrated on {n} {on}: "
              f"{100 * gap:+.1f} points against {'margin 0' if stand is not None else 'the best candidate'} there; "
              f"accuracy_margin={DEFAULT_ACCURACY_MARGIN:g} for queries less like the history than "
              f"{100 * (1 - far_share):g}% of those questions")
    some = ids[:: max(1, len(ids) // CLOSENESS_SAMPLE)]  # enough for a quantile; two searches each
    local = local_closeness(history, history.vectors(some), some)
    min_closeness = float(np.quantile(local, far_share)) if far_share > 0 else -math.inf
    return MarginCalibration(make_knob("accuracy_margin", margin), n, gap, reason, min_closeness)


def _with_stand_ins(estimator: Estimator, history: History, models: list[str], ids: np.ndarray, p: np.ndarray,
                    scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, str]] | None:
    """The calibration's world with each candidate known from fewer than `MIN_QUESTIONS` of the
    questions (an onboarded model) played by a stand-in: the known non-candidate model whose accuracy
    on the history is nearest the candidate's level (`model_levels`; strongest candidate first, each
    stand-in once), estimated as if known only from the candidate's own questions
    (`Estimator.onboarded_estimates`) and scored by what it really did. So the world keeps the
    candidates' levels and prices and has the estimates' noise that so few outcomes give. Those
    questions are left out (the stand-ins were fitted on them). ``None`` when a candidate has no
    stand-in (every known model taken, or the estimator cannot) or none has so few."""
    few = [j for j in range(len(models)) if int((~np.isnan(scores[:, j])).sum()) < MIN_QUESTIONS]
    if not few:
        return None
    levels = model_levels(history, [models[j] for j in few])
    others = [m for m in history.models if m not in models]
    other_scores = history.score_matrix(others) if others else np.zeros((len(history), 0))
    other_levels = np.array([history.model_stats(m)["accuracy"] for m in others])
    p, scores, names = p.copy(), scores.copy(), {}
    fitted_on = np.zeros(len(ids), bool)
    for j in sorted(few, key=lambda j: -levels[models[j]].level):
        own_ids = history.model_arrays(models[j]).ids.astype(np.int64)
        for o in np.argsort(np.abs(other_levels - levels[models[j]].level), kind="stable"):
            if others[o] in names.values():
                continue
            got = estimator.onboarded_estimates(history, others[o], own_ids)
            if got is not None and np.array_equal(got.ids, ids):
                p[:, j], scores[:, j], names[models[j]] = got.p_correct[:, 0], other_scores[ids, o], others[o]
                fitted_on |= np.isin(ids, own_ids)
                break
        else:
            return None
    scores[fitted_on] = np.nan
    return p, scores, names


def local_closeness(history: History, vectors: np.ndarray, own_ids: np.ndarray | None = None) -> np.ndarray:
    """How close each vector is to its `N_CLOSE` nearest history questions (mean similarity), minus how
    close those are to theirs: below 0, the question sits farther from the history than the history's
    questions there sit from each other. ``own_ids``: the history id of each vector, hidden from its
    own search (``None``: new queries)."""
    close, near = _closeness(history, vectors, own_ids)
    flat = near.ravel()
    known = flat >= 0
    theirs = np.zeros(len(flat))
    if known.any():  # each neighbour's own closeness, searched once however many share it
        unique, back = np.unique(flat[known], return_inverse=True)
        theirs[known] = _closeness(history, history.vectors(unique), unique)[0][back]
    counts = known.reshape(near.shape).sum(1)
    return close - theirs.reshape(near.shape).sum(1) / np.maximum(counts, 1)


def _closeness(history: History, vectors: np.ndarray, own_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean similarity of each vector's `N_CLOSE` nearest history questions, and their ids (-1 pads),
    the vector's own question (``own_ids``) left out."""
    n = min(N_CLOSE + 1, len(history))
    sims, ids = history.search(np.asarray(vectors, np.float32), n)
    if own_ids is not None:
        own = np.asarray(own_ids)[:, None]
        sims, ids = np.where(ids == own, -np.inf, sims), np.where(ids == own, -1, ids)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :N_CLOSE]
    sims, ids = np.take_along_axis(sims, order, 1), np.take_along_axis(ids, order, 1)
    valid = (ids >= 0) & np.isfinite(sims)
    close = np.where(valid, sims, 0.0).sum(1) / np.maximum(valid.sum(1), 1)
    return close, np.where(valid, ids, -1)


def expected_costs(history: History, ids: np.ndarray, cards: Mapping[str, ModelCard],
                   count_tokens: TokenCounter, default_output_tokens: float) -> np.ndarray:
    """(questions, candidates) USD of each candidate answering history questions ``ids``: their input
    tokens counted, each model's median output length (its card's default, else ``default_output_tokens``,
    where the history has none)."""
    in_tok = counted_tokens(count_tokens, [history.text(int(i)) for i in ids])
    cols = []
    for name, card in cards.items():
        out = history.model_stats(name)["median_output_tokens"]
        cols.append(card.cost(in_tok, out if np.isfinite(out) else (card.default_output_tokens or default_output_tokens)))
    return np.stack(cols, 1)
