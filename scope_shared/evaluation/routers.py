"""The common interface every router is evaluated through, and the simple baselines.

A router sees an `EvalSplit`: the history part (questions, embeddings, outcomes with NaN where an
outcome is hidden from routers, e.g. unseen models outside their N anchors) and the test questions
with their embeddings, never the test outcomes or costs. It returns, for each value of its knob, the
model index it picks for every test question (`RouterOutput`). Routers that score models turn their
scores into choices with the same tradeoff sweep, ``argmax_j p_ij - lam * cost_ij`` over the split's
``lambdas`` (cheaper model on ties), exactly what `scope_shared.routing.policies.rank` does for a
``tradeoff`` knob.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from scope_shared.cards import ModelCard
from scope_shared.errors import EvaluationError
from scope_shared.estimators.levels import score_matrix_levels
from scope_shared.evaluation.curves import lagrangian_choice
from scope_shared.tokens import approx_token_count

DEFAULT_OUTPUT_TOKENS = 256.0


@dataclass
class EvalSplit:
    """What a router may see: the history part, and the test questions (no test outcomes)."""

    dataset: str
    seed: int
    models: list[str]
    cards: dict[str, ModelCard]
    hist_questions: list[str]
    hist_benchmarks: list[str]
    hist_emb: np.ndarray
    hist_scores: np.ndarray
    hist_tokens: np.ndarray | None
    test_questions: list[str]
    test_emb: np.ndarray
    embedder_name: str = "embedder"
    unseen: list[str] = field(default_factory=list)
    lambdas: np.ndarray = field(default_factory=lambda: np.array([0.0]))
    _levels: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_h, n_t, m = len(self.hist_questions), len(self.test_questions), len(self.models)
        if self.hist_scores.shape != (n_h, m) or self.hist_emb.shape[0] != n_h or self.test_emb.shape[0] != n_t:
            raise EvaluationError("EvalSplit arrays do not match its questions and models")
        if set(self.hist_questions) & set(self.test_questions):
            raise EvaluationError("a test question is also in the history part")

    @property
    def known(self) -> np.ndarray:
        """(n_hist, n_models) mask of outcomes routers may learn from."""
        return np.isfinite(self.hist_scores)

    def median_output_tokens(self) -> np.ndarray:
        """Per model: median output tokens over its known history outcomes, else the card default."""
        out = np.empty(len(self.models))
        for j, m in enumerate(self.models):
            default = self.cards[m].default_output_tokens or DEFAULT_OUTPUT_TOKENS
            if self.hist_tokens is None:
                out[j] = default
                continue
            t = self.hist_tokens[self.known[:, j], j]
            t = t[np.isfinite(t)]
            out[j] = float(np.median(t)) if len(t) else default
        return out

    def expected_costs(self, output_tokens: np.ndarray | None = None) -> np.ndarray:
        """Expected USD per (test question, model): price x (input tokens ~ chars/4 + output tokens).

        Output tokens default to each model's history median: the same accounting for every
        baseline; SCOPE estimators pass their own per-query predictions.
        """
        in_tok = np.array([approx_token_count(q) for q in self.test_questions], dtype=np.float64)
        out_tok = self.median_output_tokens()[None, :] if output_tokens is None else output_tokens
        ip = np.array([self.cards[m].input_price for m in self.models])
        op = np.array([self.cards[m].output_price for m in self.models])
        return (in_tok[:, None] * ip[None, :] + np.broadcast_to(out_tok, (len(in_tok), len(ip))) * op[None, :]) / 1e6

    def history_accuracy(self) -> np.ndarray:
        """Per model: its level on the history part (NaN-free; 0 for a model with no known outcome):
        the mean known score of a model with outcomes on much of it, and for a held-out model with
        a few anchors its level corrected for which questions they are (`estimators.levels`)."""
        if self._levels is None:
            k = self.known
            levels = score_matrix_levels(self.hist_scores, self.hist_benchmarks)
            self._levels = np.array([e.level if n else 0.0 for e, n in zip(levels, k.sum(0))])
        return self._levels.copy()


def lambda_grid(mean_model_costs: np.ndarray, n: int = 40) -> np.ndarray:
    """The tradeoff grid shared by all routers: 0, a geometric sweep scaled to the data's cost level
    (from the history part only), and inf (always the cheapest predicted)."""
    scale = float(np.median(mean_model_costs))
    if not scale > 0:
        raise EvaluationError("model costs must be positive to build a tradeoff grid")
    return np.concatenate([[0.0], np.geomspace(1e-3, 1e3, n) / scale, [np.inf]])


@dataclass
class RouterOutput:
    """A router's choices per knob value, and (for scoring routers) its predictions on the test part."""

    choices: list[np.ndarray]
    p_correct: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    expected_cost: np.ndarray | None = None
    #: per-query USD the router itself spends beyond CPU time (e.g. an LLM predictor's calls)
    overhead_usd: float = 0.0
    #: the choices of the router's own default knob (its one out-of-the-box operating point), if any
    default_choice: np.ndarray | None = None


class EvalRouter(ABC):
    """A router under evaluation: ``fit`` on the history part, then ``route`` the test part."""

    name: str = "router"
    kind: str = "baseline"
    #: whether it embeds queries at routing time (its net cost then includes embedding)
    uses_embeddings: bool = False

    def fit(self, split: EvalSplit) -> None:  # noqa: B027 - optional
        """Learn from the history part (default: nothing to learn)."""

    @abstractmethod
    def route(self, split: EvalSplit) -> RouterOutput:
        """Choices for the test questions, one vector per knob value."""


def sweep(p: np.ndarray, cost: np.ndarray, lambdas: np.ndarray) -> list[np.ndarray]:
    """The shared tradeoff sweep: for each lam, ``argmax p - lam * cost`` (cheaper on ties)."""
    return [lagrangian_choice(p, cost, float(lam)) for lam in lambdas]


class ScoringRouter(EvalRouter):
    """A router that predicts p_correct per (query, model); the sweep turns it into a curve."""

    uses_embeddings = True

    @abstractmethod
    def predict(self, split: EvalSplit) -> np.ndarray:
        """p_correct, shape (n_test, n_models)."""

    def route(self, split: EvalSplit) -> RouterOutput:
        p = self.predict(split)
        cost = split.expected_costs()
        return RouterOutput(sweep(p, cost, split.lambdas), p_correct=p, expected_cost=cost)


class AlwaysRouter(EvalRouter):
    """Always the same model, picked on the history part: ``"cheapest"`` (by expected cost) or
    ``"bsm"`` (by history accuracy)."""

    def __init__(self, which: str) -> None:
        if which not in ("cheapest", "bsm"):
            raise EvaluationError(f"AlwaysRouter picks 'cheapest' or 'bsm', not {which!r}")
        self.which = which
        self.name = f"always-{which}"

    def pick(self, split: EvalSplit) -> int:
        if self.which == "bsm":
            acc = split.history_accuracy()
            return int(np.argmax(acc))
        return int(np.argmin(split.expected_costs().mean(0)))

    def route(self, split: EvalSplit) -> RouterOutput:
        return RouterOutput([np.full(len(split.test_questions), self.pick(split), dtype=np.int64)])


class RandomMixRouter(EvalRouter):
    """Each query goes to BSM with probability r, else to the cheapest model; r swept over [0, 1]."""

    name = "random-mix"

    def __init__(self, ratios: int = 11, seed: int = 0) -> None:
        self.ratios = np.linspace(0.0, 1.0, ratios)
        self.seed = seed

    def route(self, split: EvalSplit) -> RouterOutput:
        strong, weak = AlwaysRouter("bsm").pick(split), AlwaysRouter("cheapest").pick(split)
        u = np.random.default_rng([self.seed, split.seed]).random(len(split.test_questions))
        return RouterOutput([np.where(u < r, strong, weak).astype(np.int64) for r in self.ratios])


class OracleRouter(EvalRouter):
    """Knows the test outcomes and costs (an upper bound, not a router): the per-question
    Lagrangian oracle over the same lambda grid; at lam=0 it is the cheapest correct model."""

    name = "oracle"

    def __init__(self, test_scores: np.ndarray, test_costs: np.ndarray) -> None:
        self.scores, self.costs = test_scores, test_costs

    def route(self, split: EvalSplit) -> RouterOutput:
        lambdas = np.concatenate([[0.0], np.geomspace(1e-2, 1e6, 60) / float(np.median(self.costs)), [np.inf]])
        return RouterOutput(sweep(np.nan_to_num(self.scores, nan=0.0), self.costs, lambdas))


class PriorRouter(EvalRouter):
    """The prior: ignores the question. At each price it sends every query to the model with the best
    overall history accuracy among those whose mean expected cost fits (the accuracy-cost frontier of
    the per-model history points), so its curve has one point per frontier model.

    Its ``p_correct`` is each model's history accuracy (the same for every query): the figures of a
    router that knows each model's level and nothing about the questions.
    """

    name = "prior"

    def frontier_models(self, split: EvalSplit) -> list[int]:
        """Model indices on the history frontier, cheapest first (accuracy strictly rising)."""
        acc, cost = split.history_accuracy(), split.expected_costs().mean(0)
        out: list[int] = []
        for j in np.lexsort((-acc, cost)):
            if not out or acc[j] > acc[out[-1]]:
                out.append(int(j))
        return out

    def route(self, split: EvalSplit) -> RouterOutput:
        n = len(split.test_questions)
        p = np.broadcast_to(split.history_accuracy(), (n, len(split.models))).copy()
        choices = [np.full(n, j, dtype=np.int64) for j in self.frontier_models(split)]
        return RouterOutput(choices, p_correct=p, expected_cost=split.expected_costs())
