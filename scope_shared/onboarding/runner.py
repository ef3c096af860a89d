"""One-call onboarding: a new model answers anchor questions, is graded, and joins the history.

``onboard(model, card)`` picks the anchors (questions of the history it is given, a deterministic
set per history, size and ``seed``: `sample_anchors` over the known models' outcomes; or your own,
``anchors=``), asks the model each one (a thread pool of
``concurrency`` workers; rate limits retried with back-off), grades every answer with the pack's
graders, and records each graded outcome, with the real input/output tokens and latency, in the
history as it arrives. With a feedback log (``feedback_log=``, or one already attached to the
history) each outcome is fsynced to the log before the next step, so a crash loses nothing, and a
rerun replays the log and asks only what is not in it yet: resumption is keyed by model and
question in the log's records (source ``"onboarding"``).

Spend: every call reserves its expected cost (card price x counted prompt tokens + the card's
``default_output_tokens``, else 256) times the worst real/expected cost ratio seen so far in a
`Ledger` capped at ``max_spend`` minus what earlier runs spent, and settles with the real cost; the
first call that does not fit stops the run. One call is in flight until the first real cost is
known, then up to twice as many after each answer (at most ``concurrency``), so the cap is overshot
by at most what the calls in flight cost beyond those pessimistic holds (answers 20x longer than
assumed cost one call's excess, not ``concurrency`` calls'). A reply whose usage record cannot be
true (negative, NaN, above `MAX_TOKENS_PER_CALL`) is one failed call, charged what it held and
reported in ``failed``. ``dry_run=True`` only plans and prices.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from scope_shared.progress import show_bars
from scope_shared.budget import Ledger
from scope_shared.budget.records import MAX_USD
from scope_shared.cards import ModelCard, Outcome
from scope_shared.errors import BudgetExceeded, OnboardingError
from scope_shared.history import History
from scope_shared.estimators.levels import model_levels, reference_models
from scope_shared.onboarding.anchor_choice import AnchorDifficultyWarning, difficulty_gap, sample_anchors
from scope_shared.onboarding.clients import ModelClient, RetryPolicy, as_client, call_with_retries
from scope_shared.onboarding.graders import Grader, LLMJudgeGrader, default_graders, merge_graders
from scope_shared.onboarding.pack import AnchorPack, load_pack
from scope_shared.onboarding.questions import AnchorQuestion, render_prompt
from scope_shared.onboarding.report import OnboardingReport, accuracy_report
from scope_shared.routing import DEFAULT_OUTPUT_TOKENS
from scope_shared.tokens import TokenCounter, approx_token_count

#: anchors per new model. Issue 11 ("Estimates that carry over") measures how many are enough;
#: until it lands this is 50, the paper's middle setting and our unseen-model benchmark's N.
DEFAULT_ANCHORS = 50
#: the ``source`` of onboarding outcomes in the history and the feedback log (the resumption key)
ONBOARDING_SOURCE = "onboarding"


@dataclass(frozen=True)
class PlannedCall:
    """One anchor still to ask: the question, the prompt sent, and what it is expected to cost."""

    question: AnchorQuestion
    prompt: str
    input_tokens: float
    output_tokens: float
    cost: float


@dataclass(frozen=True)
class AnchorResult:
    """One graded anchor (``reused``: read back from the log, not asked in this run)."""

    question_id: int
    benchmark: str
    metric: str
    score: float
    input_tokens: float
    output_tokens: float
    latency_s: float
    cost: float
    reused: bool = False
    counted: bool = False
    retries: int = 0
    answer: str | None = None
    detail: str = ""


@dataclass
class OnboardingPlan:
    """The anchors of a run, which are already graded (in the log) and what the rest should cost."""

    model: str
    card: ModelCard
    pack: str
    anchors: list[AnchorQuestion]
    done: dict[int, AnchorResult]
    todo: list[PlannedCall]
    spent_before: float
    max_spend: float | None
    left_out_metrics: list[str] = field(default_factory=list)
    #: mean cost of an anchor call as the card alone predicts it (counted prompt + assumed output)
    assumed_cost_per_call: float = float("nan")
    #: the draw's seed (None for anchors given by the caller); ``given``: the caller chose them
    seed: int | None = 0
    given: bool = False
    #: questions the anchors could be drawn from (the history's gradable pack questions)
    pool_size: int = 0
    #: the known models' mean score on the pool and on the anchors, and the warning when they differ much
    pool_difficulty: float = float("nan")
    anchor_difficulty: float = float("nan")
    difficulty_warning: str | None = None

    @property
    def expected_cost(self) -> float:
        return float(sum(c.cost for c in self.todo))

    def text(self) -> str:
        """What ``--dry-run`` prints."""
        by_bench = Counter(c.question.benchmark for c in self.todo)
        out_tok = self.todo[0].output_tokens if self.todo else DEFAULT_OUTPUT_TOKENS
        how = "given" if self.given else f"drawn from {self.pool_size} history questions, seed {self.seed}"
        lines = [
            f"Onboarding plan for {self.model}: {len(self.anchors)} anchors from pack {self.pack}, {how} "
            f"({len(self.done)} already graded in the log, {len(self.todo)} to ask)",
            f"  known models score {self.anchor_difficulty:.1%} on the anchors, {self.pool_difficulty:.1%} on the pool",
            "  to ask by benchmark: " + (", ".join(f"{b} {n}" for b, n in by_bench.most_common()) or "none"),
            f"  expected spend ${self.expected_cost:.6f}: {sum(c.input_tokens for c in self.todo):,.0f} input tokens (counted), "
            f"{sum(c.output_tokens for c in self.todo):,.0f} output tokens ({out_tok:.0f} a call assumed)"
            f" at ${self.card.input_price:g} / ${self.card.output_price:g} per 1M",
        ]
        if self.spent_before:
            lines.append(f"  spent by earlier runs: ${self.spent_before:.6f}")
        if self.max_spend is not None:
            left = self.max_spend - self.spent_before
            fits = int(np.searchsorted(np.cumsum([c.cost for c in self.todo]), left + 1e-15, side="right"))
            verdict = "fits" if fits >= len(self.todo) else f"would stop after about {fits} of {len(self.todo)} calls"
            lines.append(f"  spend cap ${self.max_spend:.4f}: {verdict}")
        for metric in self.left_out_metrics:
            lines.append(f"  {metric} questions left out of the anchors (no grader; code needs run_code=True)")
        if self.difficulty_warning:
            lines.append(f"  warning: {self.difficulty_warning}")
        return "\n".join(lines)


@dataclass
class OnboardingResult:
    """What `onboard` did: the card, the grown history, every graded anchor, and the report."""

    card: ModelCard
    history: History
    plan: OnboardingPlan
    results: list[AnchorResult]
    report: OnboardingReport
    dry_run: bool = False

    @property
    def accuracy(self) -> float:
        return self.report.overall.accuracy


# ---------------------------------------------------------------- anchors
def anchor_pool(pack: AnchorPack, metrics: Sequence[str], history: History) -> tuple[np.ndarray, list[AnchorQuestion]]:
    """The questions anchors may be drawn from: those of ``history`` that are questions of ``pack``
    with a gradable metric (their ids in the history, and the pack's questions)."""
    wanted = set(metrics)
    ids, questions = [], []
    for qid in range(len(history)):
        q = pack.find(history.text(qid))
        if q is not None and q.metric in wanted:
            ids.append(qid)
            questions.append(q)
    return np.array(ids, dtype=np.int64), questions


def known_models(history: History, exclude: Sequence[str] = ()) -> list[str]:
    """The models whose outcomes guide the anchor draw: the history's reference models (outcomes on
    much of it, `levels.reference_models`), else every model with outcomes; never ``exclude``."""
    ref = [m for m in reference_models(history) if m not in exclude]
    return ref or [m for m in history.models if m not in exclude]


def known_scores_on(history: History, models: Sequence[str], ids: np.ndarray) -> np.ndarray:
    """(len(ids), len(models)) scores of ``models`` on history questions ``ids`` (NaN: no outcome)."""
    scores = np.full((len(ids), len(models)), np.nan)
    pos = np.full(len(history), -1, dtype=np.int64)
    pos[ids] = np.arange(len(ids))
    for j, m in enumerate(models):
        arr = history.model_arrays(m)
        at = pos[np.asarray(arr.ids, dtype=np.int64)]
        scores[at[at >= 0], j] = np.asarray(arr.scores)[at >= 0]
    return scores


def known_difficulty(history: History, models: Sequence[str], ids: np.ndarray) -> np.ndarray:
    """Per history question ``ids``: the mean score of ``models`` on it (NaN where none answered)."""
    scores = known_scores_on(history, models, ids)
    count = np.isfinite(scores).sum(1)
    return np.where(count > 0, np.nansum(scores, 1) / np.maximum(count, 1), np.nan)


def choose_anchors(
    pack: AnchorPack,
    n: int,
    metrics: Sequence[str],
    history: History | None = None,
    seed: int = 0,
    exclude_models: Sequence[str] = (),
) -> list[AnchorQuestion]:
    """``n`` questions of ``history`` (default: the whole pack) that are pack questions of the
    gradable ``metrics``: `sample_anchors` over the known models' outcomes there (`known_models`;
    a miniature of the history in benchmark, difficulty and who solves what), or round-robin over
    benchmarks where no model has outcomes. Never a question outside ``history``. Deterministic for
    a ``seed``, so a rerun asks the same questions."""
    if n <= 0:
        raise OnboardingError(f"the number of anchors must be positive, got {n}")
    history = history if history is not None else pack.history()
    ids, questions = anchor_pool(pack, metrics, history)
    if not len(ids):
        raise OnboardingError(
            f"the history holds no question of pack {pack.name!r} that a grader here can grade (metrics: {', '.join(metrics)})"
        )
    models = known_models(history, exclude_models)
    if models:
        scores = known_scores_on(history, models, ids)
        if np.isfinite(scores).any():
            picked, _ = sample_anchors(scores, [q.benchmark for q in questions], n, history.vectors(ids), seed)
            return [questions[i] for i in picked]
    by_bench: dict[str, list[int]] = {}
    for i in np.random.default_rng([seed, 23]).permutation(len(questions)):
        by_bench.setdefault(questions[i].benchmark, []).append(int(i))
    order = [qs[r] for r in range(max(map(len, by_bench.values()))) for qs in by_bench.values() if r < len(qs)]
    return [questions[i] for i in order[:n]]


def given_anchors(pack: AnchorPack, anchors: Sequence[Any], metrics: Sequence[str]) -> list[AnchorQuestion]:
    """Your own anchors, as pack questions: each an `AnchorQuestion` of the pack, a pack question id
    or a pack question's text (duplicates dropped, order kept)."""
    out: dict[int, AnchorQuestion] = {}
    for a in anchors:
        q: AnchorQuestion | None
        if isinstance(a, AnchorQuestion):
            q = pack.find(a.text)
        elif isinstance(a, (int, np.integer)) and not isinstance(a, bool):
            q = pack.questions[int(a)] if 0 <= int(a) < len(pack) else None
        elif isinstance(a, str):
            q = pack.find(a)
        else:
            raise OnboardingError(f"an anchor is a pack question, its id or its text, not {type(a).__name__}")
        if q is None:
            raise OnboardingError(
                f"anchor {str(getattr(a, 'text', a))[:60]!r} is not a question of pack {pack.name!r} "
                "(to onboard on your own labelled questions, build a pack of them: scope pack build)"
            )
        if q.metric not in metrics:
            why = "pass run_code=True" if q.metric == "code" else f"give a grader for {q.metric!r}"
            raise OnboardingError(f"anchor #{q.id} ({q.benchmark}) is a {q.metric} question no grader here can grade: {why}")
        out.setdefault(q.id, q)
    if not out:
        raise OnboardingError("anchors= is empty: give at least one question, or leave it out to draw them")
    return list(out.values())


def logged_outcomes(history: History, model: str) -> dict[str, dict[str, float]]:
    """Onboarding outcomes of ``model`` already in the history (replayed from the log), by question text."""
    log = history.outcome_log
    if model not in log.model_names or ONBOARDING_SOURCE not in log.source_names:
        return {}
    codes, sources = log.column("model"), log.column("source")
    rows = np.flatnonzero((codes == log.model_names.index(model)) & (sources == log.source_names.index(ONBOARDING_SOURCE)))
    cols = {k: log.column(k)[rows].tolist() for k in ("qid", "correct", "input_tokens", "output_tokens", "latency_s")}
    return {history.text(int(q)): {k: float(cols[k][i]) for k in cols if k != "qid"} for i, q in enumerate(cols["qid"])}


def _check_model_name(history: History, model: str) -> None:
    log = history.outcome_log
    if model in log.model_names:
        sources = log.column("source")[log.column("model") == log.model_names.index(model)]
        foreign = {log.source_names[int(s)] for s in np.unique(sources)} - {ONBOARDING_SOURCE}
        if foreign:
            raise OnboardingError(
                f"model {model!r} already has outcomes in the history from {', '.join(sorted(foreign))}: "
                "onboard it under another name, or drop it first (History.drop_models)"
            )


def _nan0(x: float) -> float:
    return 0.0 if x != x else x


#: more tokens than any model reads or writes in one call: a usage record above it is not believed
MAX_TOKENS_PER_CALL = 10_000_000


def _bad_usage(input_tokens: Any, output_tokens: Any) -> str | None:
    """What is wrong with a reply's token counts (None when they are believable)."""
    for what, v in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= MAX_TOKENS_PER_CALL:
            return f"{what}={v!r}"
    return None


# ---------------------------------------------------------------- the run
class _Run:
    """One onboarding run's state: the ledger, the client, the graders, the history to grow."""

    def __init__(self, plan: OnboardingPlan, history: History, client: ModelClient, graders: Mapping[str, Grader],
                 pack: AnchorPack, retry: RetryPolicy, concurrency: int = 1) -> None:
        self.plan, self.history, self.client, self.graders, self.pack, self.retry = plan, history, client, graders, pack, retry
        budget = None if plan.max_spend is None else max(plan.max_spend - plan.spent_before, 0.0)
        self.ledger = Ledger(budget=budget, name=f"onboarding {plan.model}", mode="raise")
        self.stop = threading.Event()
        self.skipped_by_cap = 0
        self.failed: list[str] = []
        self._lock = threading.Lock()
        # spend control under concurrency: one call in flight until a real cost is known, then twice
        # as many after each answer, up to ``concurrency``; every hold is the call's estimate times
        # the worst real/estimated cost ratio seen, so the cap is overshot by at most what the calls
        # in flight cost beyond such holds
        self._gate = threading.Condition()
        self._in_flight = 0
        self._limit = 1
        self._concurrency = max(1, int(concurrency))
        self.worst_ratio = 1.0

    def _hold(self, call: PlannedCall) -> Any:
        """Wait for a free slot, then reserve the call's pessimistic cost; None when the cap stops the run."""
        with self._gate:
            while self._in_flight >= self._limit and not self.stop.is_set():
                self._gate.wait(0.5)
            if self.stop.is_set():
                return None
            try:
                hold = self.ledger.reserve(min(call.cost * self.worst_ratio, MAX_USD))
            except BudgetExceeded:
                self.stop.set()
                self._gate.notify_all()
                return None
            self._in_flight += 1
            return hold

    def _done(self, call: PlannedCall, cost: float | None) -> None:
        with self._gate:
            self._in_flight -= 1
            if cost is not None:
                if call.cost > 0:
                    self.worst_ratio = max(self.worst_ratio, cost / call.cost)
                self._limit = min(self._concurrency, self._limit * 2)
            self._gate.notify_all()

    def _fail(self, q: AnchorQuestion, what: str) -> None:
        with self._lock:
            self.failed.append(f"question #{q.id} ({q.benchmark}): {what}")

    def ask(self, call: PlannedCall) -> AnchorResult | None:
        q = call.question
        hold = self._hold(call)
        if hold is None:
            with self._lock:
                self.skipped_by_cap += 1
            return None
        cost: float | None = None
        try:
            try:
                reply, retries = call_with_retries(self.client, call.prompt, self.retry)
            except Exception as exc:  # noqa: BLE001 - reported, not fatal: the rerun asks again
                hold.cancel()
                self._fail(q, f"call failed: {type(exc).__name__}: {exc}")
                return None
            bad = _bad_usage(reply.input_tokens, reply.output_tokens)
            if bad:  # the call was made, its cost is unknown: charge what it held
                hold.settle(hold.amount, model=self.plan.model)
                self._fail(q, f"the model reported an impossible usage record ({bad}); the call is charged its hold, "
                              f"${hold.amount:.6f}, and not graded")
                return None
            cost = self.plan.card.cost(reply.input_tokens, reply.output_tokens)
            try:
                grade = self.graders[q.metric].grade(reply.text, q)
            except Exception as exc:  # noqa: BLE001 - a grader failing (e.g. a judge) loses this anchor only
                hold.settle(cost, model=self.plan.model, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)
                self._fail(q, f"grading failed: {type(exc).__name__}: {exc}")
                return None
            outcome = Outcome(model=self.plan.model, correct=grade.score, output_tokens=reply.output_tokens,
                              input_tokens=reply.input_tokens, latency_s=reply.latency_s, source=ONBOARDING_SOURCE)
            self.history.add(q.text, self.pack.vectors([q.id])[0], [outcome], benchmark=q.benchmark)  # log first, fsynced
            hold.settle(cost, model=self.plan.model, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)
        finally:
            self._done(call, cost)
        return AnchorResult(q.id, q.benchmark, q.metric, grade.score, reply.input_tokens, reply.output_tokens,
                            reply.latency_s, cost, counted=reply.counted, retries=retries, answer=reply.text, detail=grade.detail)

    def run(self, concurrency: int, show_progress: bool) -> list[AnchorResult]:
        results: list[AnchorResult] = []
        bar = tqdm(total=len(self.plan.todo), desc=f"onboarding {self.plan.model}", disable=not show_bars(show_progress))
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(self.ask, c) for c in self.plan.todo]
            try:
                for fut in as_completed(futures):
                    r = fut.result()
                    if r is not None:
                        results.append(r)
                        bar.set_postfix(acc=f"{np.mean([x.score for x in results]):.2f}", spent=f"${self.ledger.spent:.4f}")
                    bar.update(1)
            except BaseException:
                self.stop.set()
                for f in futures:
                    f.cancel()
                raise
            finally:
                bar.close()
        return results


def _report(plan: OnboardingPlan, results: list[AnchorResult], run: _Run | None, judge: Any,
            history: History, started: float) -> OnboardingReport:
    everything = list(plan.done.values()) + results
    level = None
    if everything and plan.model in history.models:
        level = model_levels(history, [plan.model])[plan.model]
    overall, per_bench = accuracy_report([r.score for r in everything], [r.benchmark for r in everything])
    card = plan.card
    assumed_out = card.default_output_tokens or DEFAULT_OUTPUT_TOKENS

    def med(xs: list[float]) -> float:
        return float(np.median(xs)) if xs else float("nan")

    return OnboardingReport(
        model=plan.model, input_price=card.input_price, output_price=card.output_price,
        anchors_planned=len(plan.anchors), graded=len(everything), calls_made=len(results), reused_from_log=len(plan.done),
        overall=overall, per_benchmark=per_bench,
        median_output_tokens=med([r.output_tokens for r in everything]),
        median_latency_s=med([r.latency_s for r in everything]),
        cost_per_call=float(np.mean([r.cost for r in everything])) if everything else float("nan"),
        assumed_cost_per_call=plan.assumed_cost_per_call,
        assumed_output_tokens=assumed_out,
        spent_this_run=run.ledger.spent if run else 0.0,
        spent_total=plan.spent_before + (run.ledger.spent if run else 0.0),
        max_spend=plan.max_spend,
        failed=list(run.failed) if run else [],
        skipped_by_cap=run.skipped_by_cap if run else 0,
        left_out_metrics=list(plan.left_out_metrics),
        tokens_counted_locally=sum(r.counted for r in results),
        judge_tokens=(judge.input_tokens, judge.output_tokens) if isinstance(judge, LLMJudgeGrader) and judge.calls else None,
        level=level,
        difficulty_warning=plan.difficulty_warning,
        run_time_s=time.perf_counter() - started,
    )


def plan_onboarding(
    card: ModelCard, history: History, pack: AnchorPack, n_anchors: int, graders: Mapping[str, Grader],
    max_spend: float | None, token_counter: TokenCounter = approx_token_count,
    anchors: Sequence[Any] | None = None, seed: int = 0,
) -> OnboardingPlan:
    """Choose the anchors (drawn from ``history``, or ``anchors`` as given), read which the log
    already holds, price the rest, and compare the anchors' difficulty with the pool's."""
    _check_model_name(history, card.name)
    gradable = [m for m in dict.fromkeys(q.metric for q in pack.questions) if m in graders]
    left_out = sorted({q.metric for q in pack.questions} - set(gradable))
    given = anchors is not None
    if anchors is not None:
        anchors = given_anchors(pack, anchors, gradable)
    else:
        anchors = choose_anchors(pack, n_anchors, gradable, history, seed, exclude_models=[card.name])
    pool_ids, _ = anchor_pool(pack, gradable, history)
    models = known_models(history, [card.name])
    pool_difficulty = known_difficulty(history, models, pool_ids) if models else np.full(len(pool_ids), np.nan)
    in_hist = np.array([i for i in (history.question_id(q.text) for q in anchors) if i is not None], dtype=np.int64)
    anchor_difficulty = known_difficulty(history, models, in_hist) if models else np.full(len(in_hist), np.nan)
    warning = difficulty_gap(pool_difficulty, anchor_difficulty)
    logged = logged_outcomes(history, card.name)
    done: dict[int, AnchorResult] = {}
    todo: list[PlannedCall] = []
    out_tok = card.default_output_tokens or DEFAULT_OUTPUT_TOKENS
    assumed = []
    for q in anchors:
        prompt = render_prompt(q)
        n_in = float(token_counter(prompt))
        assumed.append(card.cost(n_in, out_tok))
        row = logged.get(q.text)
        if row is not None:
            i, o = _nan0(row["input_tokens"]), _nan0(row["output_tokens"])
            done[q.id] = AnchorResult(q.id, q.benchmark, q.metric, row["correct"], i, o, _nan0(row["latency_s"]), card.cost(i, o), reused=True)
        else:
            todo.append(PlannedCall(q, prompt, n_in, out_tok, assumed[-1]))
    spent_before = float(sum(r.cost for r in done.values()))
    return OnboardingPlan(card.name, card, pack.name, anchors, done, todo, spent_before, max_spend, left_out,
                          float(np.mean(assumed)), seed=None if given else seed, given=given,
                          pool_size=len(pool_ids), pool_difficulty=_nanmean(pool_difficulty),
                          anchor_difficulty=_nanmean(anchor_difficulty), difficulty_warning=warning)


def _nanmean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def onboard(
    model: Any,
    card: ModelCard | Mapping[str, Any],
    *,
    history: History | None = None,
    pack: AnchorPack | str | Path | None = None,
    n_anchors: int = DEFAULT_ANCHORS,
    max_spend: float | None = None,
    concurrency: int = 4,
    feedback_log: str | Path | None = None,
    graders: Mapping[str, Any] | None = None,
    run_code: bool | Literal["unsafe"] = False,
    judge: Any = None,
    retry: RetryPolicy | None = None,
    dry_run: bool = False,
    show_progress: bool = True,
    token_counter: TokenCounter = approx_token_count,
    anchors: Sequence[Any] | None = None,
    seed: int = 0,
) -> OnboardingResult:
    """Onboard ``model`` (a LangChain chat model, a LlamaIndex LLM, a ``"provider:model"`` string or a
    function ``prompt -> text``) priced by ``card``: see the module doc.

    Args:
        history: the history to grow (default: a new one from the pack); the card joins ``history.cards``.
        pack: the anchor pack (default: the bundled ``llmrouter-9``), loaded or by name/path.
        n_anchors: how many anchors to ask (default `DEFAULT_ANCHORS`).
        max_spend: cap in USD on what onboarding this model may cost, across reruns.
        concurrency: calls in flight at once.
        feedback_log: path of the feedback log that makes the run resumable (attached to ``history``).
        graders: graders by metric to use instead of the built-ins (a `Grader` or a function).
        run_code: grade code questions by running them in the sandbox (opt-in; Linux with bubblewrap,
            else an error that says how to install it; ``"unsafe"`` runs them without the sandbox, with
            a warning). Without it, code questions are left out of the anchors unless ``graders`` has
            one for ``"code"``.
        judge: a chat model grading ``judge``-metric questions (`LLMJudgeGrader`).
        retry: back-off on rate limits (default `RetryPolicy()`: 6 retries from 1 s, at most 60 s).
        dry_run: plan and price only; no call is made.
        anchors: your own anchors instead of a draw: pack questions, their ids or their texts (asked
            as given; one not in ``history`` joins it with the model's outcome).
        seed: the draw's seed (default 0): the same seed draws the same anchors from the same history,
            so a rerun resumes; another seed draws another miniature of the history.

    Drawn anchors are questions of ``history`` only (those of the pack with a gradable metric). When
    the anchors are much harder or easier than that pool (by the known models' mean score), an
    `AnchorDifficultyWarning` is issued and the plan and report say so. The report carries the run
    time and the model's level corrected for the anchors' difficulty (`levels.model_levels`).
    """
    started = time.perf_counter()
    card = card if isinstance(card, ModelCard) else ModelCard.create(**dict(card))
    if concurrency < 1:
        raise OnboardingError(f"concurrency must be at least 1, got {concurrency}")
    if max_spend is not None and (not isinstance(max_spend, (int, float)) or not max_spend >= 0 or max_spend == float("inf")):
        raise OnboardingError(f"max_spend must be a finite number of USD >= 0, got {max_spend!r}")
    pack = pack if isinstance(pack, AnchorPack) else load_pack(pack)
    history = history if history is not None else pack.history()
    if history.dim != pack.dim:
        raise OnboardingError(f"the history holds {history.dim}-d embeddings, pack {pack.name!r} {pack.dim}-d ones")
    if feedback_log is not None:
        attached = history.feedback_log
        if attached is None:
            history.attach_log(feedback_log)
        elif attached.path.resolve() != Path(feedback_log).resolve():
            raise OnboardingError(
                f"this history already writes its feedback to {attached.path}, so it cannot also write to "
                f"{feedback_log}: a history keeps one log, holding every model's answers. Onboard this model "
                f"into the same log: pass feedback_log={str(attached.path)!r}, or leave feedback_log out "
                "(the attached log is used)"
            )
    judge_grader = LLMJudgeGrader(judge) if judge is not None and not isinstance(judge, Grader) else judge
    all_graders = merge_graders(default_graders(run_code=run_code, judge=judge_grader), graders)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise OnboardingError(f"seed must be an integer, got {seed!r}")
    if anchors is not None and (isinstance(anchors, (str, bytes)) or not isinstance(anchors, Sequence)):
        raise OnboardingError("anchors must be a list of pack questions, their ids or their texts")
    plan = plan_onboarding(card, history, pack, n_anchors, all_graders, max_spend, token_counter, anchors, int(seed))
    if plan.difficulty_warning:
        warnings.warn(f"onboarding {card.name}: {plan.difficulty_warning}", AnchorDifficultyWarning, stacklevel=2)
    if dry_run:
        return OnboardingResult(card, history, plan, [], _report(plan, [], None, None, history, started), dry_run=True)
    client = as_client(model, token_counter)
    run = _Run(plan, history, client, all_graders, pack, retry or RetryPolicy(), concurrency)
    results = run.run(concurrency, show_progress)
    if plan.done or results:
        history.cards[card.name] = card
    order = {q.id: i for i, q in enumerate(plan.anchors)}
    results.sort(key=lambda r: order[r.question_id])
    return OnboardingResult(card, history, plan, list(plan.done.values()) + results,
                            _report(plan, results, run, judge_grader, history, started))
