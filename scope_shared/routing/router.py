"""The Router: query -> embed -> anchors -> estimates -> policy (+ ledger) -> decision."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from scope_shared.progress import progress
from scope_shared.cards import ModelCard, Outcome, to_cards
from scope_shared.embedders import Embedder
from scope_shared.errors import (
    FeedbackError,
    InvalidCardError,
    InvalidComponentError,
    InvalidQueryError,
    InvalidSettingError,
    NoCandidatesError,
    UnknownModelError,
)
from scope_shared.estimators import Estimator, PanelEstimator
from scope_shared.estimators.guard import checked_predict
from scope_shared.history import History
from scope_shared.history.reembed import embedder_for
from scope_shared.history.shared import as_history
from scope_shared.history.subset import add_model_outcomes
from scope_shared.live import LiveObject
from scope_shared.query import validate_queries, validate_query
from scope_shared.routing.decision import Decision, Estimate
from scope_shared.routing.exploration import Explorer
from scope_shared.routing.knobs import Knob, KnobLike, as_knob
from scope_shared.routing.margin_calibration import MarginCalibration, calibrate_margin, local_closeness
from scope_shared.routing.lengths import fill_output_tokens
from scope_shared.routing.policies import cap_first, explain, policy_for, rank
from scope_shared.routing.records import CallBook, CallRecord
from scope_shared.routing.routing_text import RoutingText
from scope_shared.routing.validation import check_budget_view, check_router_args, counted_tokens
from scope_shared.tokens import TokenCounter, approx_token_count

if TYPE_CHECKING:  # budgets sit a floor above routing; the router only reads them
    from scope_shared.budget.base import BudgetView

#: output tokens assumed when neither the history nor the card says (stated in every figure using it)
DEFAULT_OUTPUT_TOKENS = 256.0


class Router(LiveObject):
    """Chooses, for each query, which candidate model should answer it.

    Args:
        cards: the candidates (``ModelCard`` objects or dicts); each needs outcomes in ``history``.
        history: the router's memory (questions, embeddings, outcomes), or a ``postgresql://`` URL
            of a shared one (`History.connect`).
        estimator: how estimates are made (default: `PanelEstimator`, training-free, fitted on the
            history in about a second when the router is built, and kept in the history; with
            fewer than two models covering much of the history it is the kNN estimator).
        embedder: an `Embedder`, a LangChain ``Embeddings``, a name (``"minilm"``, ``"fast"``), a
            sentence-transformers path, or ``None``: the embedder the history records, if it is one
            of those names, else the bundled all-MiniLM-L6-v2. One that did not make the history's
            vectors is refused (re-embed it: ``scope history reembed``).
        default_knob: the knob used when a call sets none, a `Knob` or a mapping such as
            ``{"min_accuracy": 0.8}``. Default: an ``accuracy_margin`` calibrated on the history for
            these candidates (`margin_calibration`: the largest that kept the best candidate's accuracy
            on history questions they all answered; for candidates known only from their anchors, known
            models of about their levels stand in), else ``accuracy_margin=0`` (the candidate predicted
            most accurate, the cheaper on ties); ``default_knob_reason`` says which, and
            `default_knobs` gives each query's (0 for queries far from the history).
        token_counter: counts a query's input tokens to price it (default: ~4 characters a token).
        default_output_tokens: output length assumed when nothing better is known.
        batch_scorer: optional batch-level scorer for the ``alpha`` knob, e.g. the paper's
            two-stage scorer (`scope_shared.routing.paper_scorer.TwoStageScorer`); ``None`` keeps the
            per-query `alpha_score`.
        feedback_log: path of an append-only feedback log (`scope_shared.history.feedback_log`): replayed
            into ``history`` now, and every `record_outcome` is fsynced to it before it returns.
        exploration: an `scope_shared.routing.exploration.Explorer` (off by default): a budgeted
            share of decisions tries models by Thompson sampling, and optionally feedback re-levels
            models that drift.

    A router is live shared state (`scope_shared.live`): ``copy.deepcopy`` returns it unchanged,
    ``pickle`` raises a `ScopeError` saying how to rebuild one elsewhere.
    """

    #: the knob a call without one gets (see ``default_knob`` above), and why it is that one
    default_knob: Knob
    default_knob_reason: str
    _calibration: MarginCalibration | None

    pickle_advice: ClassVar[str] = (
        "it holds a live history (vector index, feedback log) and an embedder. Save the history "
        "(router.history.save(path)) and build a Router from History.load(path) in the other process"
    )

    def __init__(
        self,
        cards: Iterable[ModelCard | Mapping[str, Any]],
        history: History,
        estimator: Estimator | None = None,
        embedder: Embedder | Any = None,
        default_knob: KnobLike | None = None,
        token_counter: TokenCounter | None = None,
        default_output_tokens: float = DEFAULT_OUTPUT_TOKENS,
        batch_scorer: Any = None,
        feedback_log: str | Path | None = None,
        exploration: Explorer | None = None,
    ) -> None:
        check_router_args(estimator, token_counter, default_output_tokens)
        self.cards = to_cards(cards)
        self.history = history = as_history(history)
        self.estimator = estimator or PanelEstimator()
        self.embedder = embedder_for(history, embedder)
        missing = [m for m in self.cards if m not in history.models]
        if missing:
            raise InvalidCardError(
                f"no outcomes in the history for {', '.join(map(repr, missing))}: a model joins by "
                "answering some history questions (scope_shared.onboard, or Router.add_model)"
            )
        self._knob_given = as_knob(default_knob, "default_knob")
        self.count_tokens: TokenCounter = token_counter or approx_token_count
        self.default_output_tokens = float(default_output_tokens)
        self.batch_scorer = batch_scorer
        if exploration is not None and not isinstance(exploration, Explorer):
            raise InvalidComponentError(f"exploration must be an Explorer, got {type(exploration).__name__}")
        self.exploration = exploration
        self.calls = CallBook()
        attached = history.feedback_log
        if feedback_log is not None and (attached is None or attached.path.resolve() != Path(feedback_log).resolve()):
            history.attach_log(feedback_log)
        self.estimator.prepare(history, self.models)  # fitted now, not on the first routed call
        self._set_default_knob()

    def _set_default_knob(self) -> None:
        """The knob a call without one gets: the one given, else the margin calibrated on the history
        for these candidates (`margin_calibration`); ``default_knob_reason`` says which and why."""
        if self._knob_given is not None:
            self._calibration = None
            self.default_knob, self.default_knob_reason = self._knob_given, "set by default_knob="
        else:
            self._calibration = calibrate_margin(self.estimator, self.history, self.cards, self.count_tokens,
                                                 self.default_output_tokens)
            self.default_knob, self.default_knob_reason = self._calibration.knob, self._calibration.reason

    def default_knobs(self, embs: np.ndarray) -> list[Knob]:
        """The knob each query (by its embedding) gets when a call sets none: ``default_knob``, but
        the fixed margin for a query farther from the history than the calibration questions were."""
        if self._calibration is None or not math.isfinite(self._calibration.min_closeness):
            return [self.default_knob] * len(embs)
        return self._calibration.knobs_for(local_closeness(self.history, embs))

    # ---------------------------------------------------------------- candidates
    @property
    def models(self) -> list[str]:
        return list(self.cards)

    def _candidates(self, candidates: Sequence[str] | None) -> list[str]:
        if candidates is None:
            return self.models
        if isinstance(candidates, str) or not isinstance(candidates, Sequence) or not all(isinstance(m, str) for m in candidates):
            raise InvalidSettingError("candidates must be a sequence of model names")
        out = list(dict.fromkeys(candidates))
        unknown = [m for m in out if m not in self.cards]
        if unknown:
            raise UnknownModelError(
                f"unknown model {unknown[0]!r}; candidates are {', '.join(self.models)}"
            )
        if not out:
            raise NoCandidatesError("no candidates left to route among")
        return out

    # ---------------------------------------------------------------- estimating
    def _estimate_arrays(
        self, queries: list[str], embs: np.ndarray, models: list[str], prompt_tokens: Sequence[float] | None = None
    ) -> tuple[list[dict[str, Estimate]], np.ndarray, np.ndarray]:
        anchors = self.history.anchors(embs, models, self.estimator.k)
        raw = checked_predict(self.estimator, queries, embs, anchors, self.history)
        tokens, length_source = fill_output_tokens(
            raw.output_tokens, anchors, self.history, [self.cards[m] for m in models], self.default_output_tokens
        )
        approximated = prompt_tokens is None and self.count_tokens is approx_token_count
        in_tok = (
            counted_tokens(self.count_tokens, queries)
            if prompt_tokens is None
            else _checked_prompt_tokens(prompt_tokens, len(queries))
        )
        in_price = np.array([self.cards[m].input_price for m in models])
        out_price = np.array([self.cards[m].output_price for m in models])
        cost = (in_tok[:, None] * in_price[None, :] + tokens * out_price[None, :]) / 1e6
        # Estimates are built without re-validation when the arrays are already in range (checked
        # here, vectorised): pydantic validation of 100 candidates x 64 queries dominated routing.
        p_arr = raw.p_correct
        trusted = bool(
            np.all((p_arr >= 0) & (p_arr <= 1)) and np.all(tokens >= 0) and np.all(np.isfinite(cost)) and np.all(cost >= 0)
        )
        make = Estimate.model_construct if trusted else Estimate
        p_l, t_l, c_l, n_l = p_arr.tolist(), tokens.tolist(), cost.tolist(), np.asarray(raw.n_anchors).tolist()
        in_l = in_tok.tolist()
        name = self.estimator.name
        out = []
        for i in range(len(queries)):
            row = {}
            for j, m in enumerate(models):
                row[m] = make(
                    model=m,
                    p_correct=float(p_l[i][j]),
                    expected_output_tokens=float(t_l[i][j]),
                    input_tokens=float(in_l[i]),
                    expected_cost=float(c_l[i][j]),
                    estimator=name,
                    rationale=raw.rationales[i][j] if raw.rationales else None,
                    n_anchors=int(n_l[i][j]),
                    output_tokens_source=length_source[i, j],
                    input_tokens_approximated=approximated,
                )
            out.append(row)
        return out, raw.p_correct, cost

    def embed(self, queries: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed validated queries (cached per text)."""
        return self.embedder.embed(validate_queries(queries), show_progress=show_progress)

    def estimate(self, query: str, candidates: Sequence[str] | None = None) -> dict[str, Estimate]:
        """Every candidate's estimate for one query."""
        return self.estimate_batch([validate_query(query)], candidates)[0]

    def estimate_batch(
        self, queries: Sequence[str], candidates: Sequence[str] | None = None, show_progress: bool = False
    ) -> list[dict[str, Estimate]]:
        """Estimates for many queries, embedded in one pass."""
        qs = validate_queries(queries)
        models = self._candidates(candidates)
        return self._estimate_arrays(qs, self.embedder.embed(qs, show_progress), models)[0]

    # ---------------------------------------------------------------- routing
    def route(
        self,
        query: str | RoutingText,
        *,
        knob: KnobLike | None = None,
        ledger: BudgetView | None = None,
        candidates: Sequence[str] | None = None,
        prompt_tokens: float | None = None,
    ) -> Decision:
        """Decide which candidate answers ``query`` under ``knob`` (a `Knob` or a mapping such as
        ``{"min_accuracy": 0.7}``; default: the router's ``default_knob``). A `RoutingText` is
        taken as it is (validated when it was made); a string is validated.

        ``prompt_tokens``: input tokens of the whole prompt that will be sent (system prompt,
        history, retrieved context, tool schemas), which prices the call; default: the query's own.
        """
        return self.route_batch(
            [query if isinstance(query, RoutingText) else RoutingText(query, "query")],  # validated here, once
            knob=knob,
            ledger=ledger,
            candidates=candidates,
            prompt_tokens=None if prompt_tokens is None else [prompt_tokens],
        )[0]

    def route_batch(
        self,
        queries: Sequence[str | RoutingText],
        *,
        knob: KnobLike | None = None,
        ledger: BudgetView | None = None,
        candidates: Sequence[str] | None = None,
        show_progress: bool = False,
        prompt_tokens: Sequence[float] | None = None,
    ) -> list[Decision]:
        """Decide for many queries, embedding them in one pass (``knob`` as for `route`).

        With a ledger, each decision sees what is left of it (the decisions themselves charge
        nothing: the caller reserves and settles around the real call). ``prompt_tokens``: one
        count per query of the whole prompt each will send (default: the query's own tokens).
        """
        given = as_knob(knob)
        check_budget_view(ledger)
        qs = _query_texts(queries)
        models = self._candidates(candidates)
        embs = self.embedder.embed(qs, show_progress)
        estimates, p, cost = self._estimate_arrays(qs, embs, models, prompt_tokens)
        knobs = [given] * len(qs) if given is not None else self.default_knobs(embs)
        orders, batch_knob = None, given or self.default_knob
        if self.batch_scorer is not None and batch_knob.kind == "alpha":  # the paper's batch scorer serves alpha only
            orders = self.batch_scorer.rank_batch(self, embs, models, p, cost, batch_knob.value)
        it = range(len(qs))
        it = progress(it, desc="routing", total=len(qs), enabled=show_progress)
        if self.exploration is not None:
            return [self.exploration.decide(self.decide, estimates[i], embs[i], knobs[i], ledger,
                                            None if orders is None else orders[i]) for i in it]
        return [self.decide(estimates[i], knobs[i], ledger, None if orders is None else orders[i]) for i in it]

    def decide(
        self,
        estimates: Mapping[str, Estimate],
        knob: KnobLike | None = None,
        ledger: BudgetView | None = None,
        order: Sequence[int] | np.ndarray | None = None,
    ) -> Decision:
        """Apply the policy (and what is left of the budget) to one query's estimates.

        ``order`` is a ranking already made by a batch scorer (indices into ``estimates``); the
        budget cap still applies to it. When the cheapest candidate does not fit the budget, a
        capping budget stops the call (`BudgetExceeded`); a soft one sends it to the cheapest
        (``fallback_to_cheapest``). A ``max_cost`` no candidate fits sends it to the cheapest,
        flagged ``over_max_cost`` (and stops it under a capping budget). ``knob``: as for `route`;
        ``None`` is ``default_knob`` itself (`route` gives a query far from the history the fixed
        margin instead: `default_knobs`).
        """
        knob = as_knob(knob) or self.default_knob
        policy = policy_for(knob)
        knob_cap = policy.call_cap(knob.value)
        check_budget_view(ledger)
        models = list(estimates)
        p = np.array([estimates[m].p_correct for m in models])
        cost = np.array([estimates[m].expected_cost for m in models])
        cap = ledger.room if ledger is not None else math.inf
        if order is None:
            order = rank(knob, p, cost, cap)
        else:
            order = cap_first(np.asarray(order), cost, cap)
        cheapest = int(cost.argmin())
        cheapest_fallback = False
        over_max_cost = bool(cost[cheapest] > knob_cap + 1e-15)
        if ledger is not None and cost[cheapest] > cap + 1e-15:
            ledger.check_fits(float(cost[cheapest]), models[cheapest])  # a capping budget stops here
            cheapest_fallback = True
        if over_max_cost and ledger is not None:
            ledger.enforce(
                f"max_cost ${knob_cap:.6f} fits no candidate: the cheapest ({models[cheapest]}) is "
                f"expected to cost ${cost[cheapest]:.6f}",
                float(cost[cheapest]),
            )
        if cheapest_fallback or over_max_cost:
            order = np.argsort(cost, kind="stable")
        best = int(order[0])
        n_affordable = int((cost <= min(cap, knob_cap) + 1e-15).sum())
        text = explain(knob, models, p, cost, best, cap, n_affordable)
        if cheapest_fallback:
            text = f"{models[best]}: budget nearly spent (${max(cap, 0):.6f} left), cheapest candidate"
        elif over_max_cost:
            text = (
                f"{models[best]}: no candidate fits max_cost ${knob_cap:.6f} (the cheapest is expected "
                f"to cost ${cost[best]:.6f}): routed to the cheapest"
            )
        assumed = estimates[models[best]].assumptions
        if assumed:
            text += f" [{assumed}]"
        return Decision.model_construct(  # every field is built right here, no re-validation needed
            model=models[best],
            ranking=tuple(models[i] for i in order),
            estimates=dict(estimates),
            knob=policy.record(knob.value),
            explanation=text,
            budget_left=cap if math.isfinite(cap) else None,
            fallback_to_cheapest=cheapest_fallback,
            over_max_cost=over_max_cost,
        )

    # ---------------------------------------------------------------- growing the history
    def add_model(self, card: ModelCard | Mapping[str, Any], outcomes: Mapping[str, Outcome | Mapping[str, Any] | float]) -> None:
        """Add a candidate from its outcomes on some questions (``{question text: outcome}``).

        Outcomes may be full `Outcome`s, dicts, or bare scores; only questions new to the history
        are embedded. No retraining: estimators read the model's behaviour from its anchors.
        """
        if not isinstance(card, (ModelCard, Mapping)):
            raise InvalidCardError(f"a model card must be a ModelCard or a dict, got {type(card).__name__}")
        card = card if isinstance(card, ModelCard) else ModelCard.create(**{str(k): v for k, v in card.items()})
        if card.name in self.cards:
            raise InvalidCardError(f"model {card.name!r} is already a candidate")
        add_model_outcomes(self.history, card, outcomes, self.embedder)
        self.cards[card.name] = card
        self.estimator.prepare(self.history, [card.name])
        self._set_default_knob()

    def record_outcome(
        self,
        query: str,
        model: str,
        correct: float,
        output_tokens: float | None = None,
        input_tokens: float | None = None,
        source: str = "feedback",
        call_id: str | None = None,
    ) -> int:
        """Feed a real outcome back into the history, so later estimates use it; returns the question id.

        With ``call_id``, this outcome is the feedback on that routed call and replaces any earlier
        feedback on it."""
        query = validate_query(query)
        if not isinstance(model, str) or model not in self.cards:
            raise UnknownModelError(f"unknown model {model!r}; candidates are {', '.join(self.models)}")
        outcome = Outcome.create(
            model=model, correct=correct, output_tokens=output_tokens, input_tokens=input_tokens, source=source
        )
        emb = self.embedder.embed_one(query)
        if self.exploration is not None:
            p_raw = self.estimate(query, [model])[model].p_correct if self.exploration.tracks_drift else None
            self.exploration.observe(model, correct, p_raw, emb)
        qid = self.history.add(query, emb, [outcome], call_id=call_id)
        self.estimator.prepare(self.history, [model])  # refits only once the outcomes moved enough
        return qid

    def record_feedback(self, call: str | CallRecord, correct: float) -> int:
        """Store the real outcome of a routed call (by id or record) with its real token counts.

        The question stored is the call's routing text. Feedback on the same call again replaces
        the earlier feedback (the history counts each call once)."""
        if not isinstance(call, (str, CallRecord)):
            raise FeedbackError(f"call must be a call id or a CallRecord, got {type(call).__name__}")
        record = self.calls.get(call) if isinstance(call, str) else call
        if record.model is None:
            raise FeedbackError(f"call {record.call_id!r} has no answering model to give feedback on")
        usage = record.usage
        return self.record_outcome(
            record.query,
            record.model,
            correct,
            output_tokens=None if usage is None else usage.output_tokens,
            input_tokens=None if usage is None else usage.input_tokens,
            call_id=record.call_id,
        )


def _query_texts(queries: Sequence[str | RoutingText]) -> list[str]:
    """The texts of ``queries``, each validated once: a `RoutingText` already was."""
    if isinstance(queries, (list, tuple)) and all(isinstance(q, RoutingText) for q in queries):
        return [q.text for q in queries]  # type: ignore[union-attr]
    return validate_queries(queries)


def _checked_prompt_tokens(prompt_tokens: Sequence[float], n: int) -> np.ndarray:
    """Prompt token counts, one per query, finite and >= 0 (`InvalidQueryError` otherwise)."""
    values = list(prompt_tokens)
    ok = len(values) == n and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in values
    )
    if not ok:
        raise InvalidQueryError(f"prompt_tokens must be {n} finite count(s) >= 0, got {values!r}")
    return np.asarray(values, dtype=np.float64)
