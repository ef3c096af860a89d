"""Exploration (off by default): let feedback reach models the router stopped choosing.

Feedback only corrects a model's estimates where the router sends calls; a model that got better
after its history was recorded is never tried again. An `Explorer` given to the `Router`
(``Router(..., exploration=Explorer(rate=0.05))``) changes that in two ways:

- **Thompson sampling** on a budgeted share of decisions: each candidate's ``p_correct`` is drawn
  from ``Beta(p n + 1, (1 - p) n + 1)``, where ``n`` is its anchor count discounted by staleness
  (halved every ``evidence_half_life`` decisions since the model last got an outcome), and the same
  policy ranks the draws. A model nobody has observed for a while gets a wide posterior and is
  tried now and then; one with fresh evidence is not. At most ``rate`` of all decisions explore
  (counted, not left to chance); a decision only counts as exploring when the draw changes the
  choice. The knob's caps and the ledger's remaining budget apply to explored choices exactly as to
  greedy ones (``max_cost`` and the ledger cap the ranking), and a batch scorer's rankings are left
  alone.
- **Recency-weighted feedback** (``drift_half_life``, optional): every recorded outcome leaves a
  residual ``y - p_raw`` (the estimator's prediction just before it), weighted by recency (halved
  every ``drift_half_life`` later outcomes of that model) and by similarity to the query
  (``exp((cos - 1) / temperature)``, as the kNN estimator weighs anchors). Estimates move by the
  weighted mean residual, shrunk by ``prior_weight``: a model that drifts is re-levelled near the
  questions its feedback came from within a few outcomes, before its anchors outnumber the old ones.

Decisions that explore say so in their explanation (``"exploring ..."``); decisions carry the
drift-corrected estimates, while `Router.estimate` still returns the estimator's own.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from scope_shared.errors import InvalidSettingError
from scope_shared.routing.decision import Decision, Estimate
from scope_shared.routing.knobs import Knob
from scope_shared.routing.policies import rank

if TYPE_CHECKING:
    from scope_shared.budget.base import BudgetView

DecideFn = Callable[..., Decision]


@dataclass
class _Residual:
    emb: np.ndarray
    residual: float
    seq: int  # the model's outcome count when it was recorded


class Explorer:
    """Exploration state of one router (thread-safe). See the module doc.

    Args:
        rate: the most share of decisions that may explore (0 turns Thompson sampling off).
        evidence_half_life: decisions after which a model's evidence counts half, unless it got an
            outcome meanwhile.
        drift_half_life: later outcomes of a model after which a residual counts half; ``None``
            (default) leaves estimates as the estimator makes them.
        temperature: similarity scale of the drift correction.
        prior_weight: pseudo-weight of "no correction" in the drift correction.
        memory: residuals kept per model (the oldest go first).
        seed: of the Thompson draws.
    """

    def __init__(
        self,
        rate: float = 0.05,
        evidence_half_life: float = 200.0,
        drift_half_life: float | None = None,
        temperature: float = 0.3,
        prior_weight: float = 1.0,
        memory: int = 512,
        seed: int | None = None,
    ) -> None:
        if not 0 <= rate <= 1:
            raise InvalidSettingError(f"exploration rate must be in [0, 1], got {rate}")
        if evidence_half_life <= 0 or (drift_half_life is not None and drift_half_life <= 0):
            raise InvalidSettingError("half-lives must be positive")
        if temperature <= 0 or prior_weight < 0 or memory <= 0:
            raise InvalidSettingError("Explorer needs temperature > 0, prior_weight >= 0 and memory > 0")
        self.rate = rate
        self.evidence_half_life = evidence_half_life
        self.drift_half_life = drift_half_life
        self.temperature = temperature
        self.prior_weight = prior_weight
        self.memory = memory
        self.decisions = 0
        self.explored = 0
        self._rng = np.random.default_rng(seed)
        self._last_outcome: dict[str, int] = {}  # model -> decision count at its last outcome
        self._n_outcomes: dict[str, int] = {}
        self._residuals: dict[str, deque[_Residual]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Explorer(rate={self.rate}, evidence_half_life={self.evidence_half_life}, "
                f"drift_half_life={self.drift_half_life})")

    # ---------------------------------------------------------------- what the router calls
    def decide(
        self,
        decide: DecideFn,
        estimates: Mapping[str, Estimate],
        query_emb: np.ndarray,
        knob: Knob,
        ledger: BudgetView | None = None,
        order: Sequence[int] | np.ndarray | None = None,
    ) -> Decision:
        """``decide`` (the router's policy step) on drift-corrected estimates, exploring within budget."""
        estimates = self.corrected(estimates, query_emb)
        greedy = decide(estimates, knob, ledger, order)
        with self._lock:
            self.decisions += 1
            may_explore = order is None and self.explored + 1 <= self.rate * self.decisions
            draw = self._thompson(estimates) if may_explore else None
        if draw is None:
            return greedy
        cost = np.array([e.expected_cost for e in estimates.values()])
        tried = decide(estimates, knob, ledger, rank(knob, draw, cost))
        if tried.model == greedy.model:
            return greedy
        with self._lock:
            self.explored += 1
        j = list(estimates).index(tried.model)
        return tried.model_copy(update={"explanation": (
            f"exploring {tried.model} (drew p_correct={draw[j]:.2f} from its uncertainty; "
            f"the greedy choice was {greedy.model}): {tried.explanation}")})

    def observe(self, model: str, correct: float, p_raw: float | None, query_emb: np.ndarray | None) -> None:
        """A recorded outcome: refreshes the model's evidence and, with drift tracking, stores its
        residual against ``p_raw`` (the estimator's prediction before the outcome)."""
        with self._lock:
            self._last_outcome[model] = self.decisions
            seq = self._n_outcomes[model] = self._n_outcomes.get(model, 0) + 1
            if self.drift_half_life is not None and p_raw is not None and query_emb is not None:
                store = self._residuals.setdefault(model, deque(maxlen=self.memory))
                store.append(_Residual(np.asarray(query_emb, dtype=np.float32), float(correct) - p_raw, seq))

    @property
    def tracks_drift(self) -> bool:
        return self.drift_half_life is not None

    # ---------------------------------------------------------------- pieces
    def evidence(self, model: str, n_anchors: int) -> float:
        """Anchor count discounted by staleness (decisions since the model's last outcome)."""
        age = self.decisions - self._last_outcome.get(model, 0)
        return n_anchors * 0.5 ** (age / self.evidence_half_life)

    def _thompson(self, estimates: Mapping[str, Estimate]) -> np.ndarray:
        p = np.array([e.p_correct for e in estimates.values()])
        n = np.array([self.evidence(m, e.n_anchors) for m, e in estimates.items()])
        return self._rng.beta(p * n + 1.0, (1.0 - p) * n + 1.0)

    def correction(self, model: str, query_emb: np.ndarray) -> float:
        """The drift correction of ``model``'s p_correct near ``query_emb`` (0 without residuals)."""
        if self.drift_half_life is None:
            return 0.0
        with self._lock:
            store = list(self._residuals.get(model, ()))
            latest = self._n_outcomes.get(model, 0)
        if not store:
            return 0.0
        embs = np.stack([r.emb for r in store])
        sims = embs @ np.asarray(query_emb, dtype=np.float32)
        recency = 0.5 ** (np.array([latest - r.seq for r in store]) / self.drift_half_life)
        w = recency * np.exp((sims - 1.0) / self.temperature)
        return float(np.sum(w * np.array([r.residual for r in store])) / (np.sum(w) + self.prior_weight))

    def corrected(self, estimates: Mapping[str, Estimate], query_emb: np.ndarray) -> dict[str, Estimate]:
        """The estimates with each model's drift correction applied (unchanged without drift tracking)."""
        if self.drift_half_life is None:
            return dict(estimates)
        out = {}
        for m, e in estimates.items():
            delta = self.correction(m, query_emb)
            p = min(1.0, max(0.0, e.p_correct + delta))
            out[m] = e if math.isclose(delta, 0.0, abs_tol=1e-12) else e.model_copy(update={"p_correct": p})
        return out
