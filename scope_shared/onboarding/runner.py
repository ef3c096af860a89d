"""One-call onboarding: a new model answers anchor questions, is graded, and joins the history.

``onboard(model, card)`` picks the anchors (a fixed, deterministic set per pack and size:
`suggest_questions` over the pack's known models), asks the model each one (a thread pool of
``concurrency`` workers; rate limits retried with back-off), grades every answer with the pack's
graders, and records each graded outcome, with the real input/output tokens and latency, in the
history as it arrives. With a feedback log (``feedback_log=``, or one already attached to the
history) each outcome is fsynced to the log before the next step, so a crash loses nothing, and a
rerun replays the log and asks only what is not in it yet: resumption is keyed by model and
question in the log's records (source ``"onboarding"``).

Spend: every call reserves its expected cost (card price x counted prompt tokens + the card's
``default_output_tokens``, else 256) in a `Ledger` capped at ``max_spend`` minus what earlier runs
spent, and settles with the real cost; the first call that does not fit stops the run (each call in
flight may still exceed its estimate). ``dry_run=True`` only plans and prices.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from scope_shared.progress import show_bars
from scope_shared.budget import Ledger
from scope_shared.cards import ModelCard, Outcome
from scope_shared.errors import BudgetExceeded, OnboardingError
from scope_shared.history import History
from scope_shared.onboarding.anchor_choice import suggest_questions
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

    @property
    def expected_cost(self) -> float:
        return float(sum(c.cost for c in self.todo))

    def text(self) -> str:
        """What ``--dry-run`` prints."""
        by_bench = Counter(c.question.benchmark for c in self.todo)
        out_tok = self.todo[0].output_tokens if self.todo else DEFAULT_OUTPUT_TOKENS
        lines = [
            f"Onboarding plan for {self.model}: {len(self.anchors)} anchors from pack {self.pack} "
            f"({len(self.done)} already graded in the log, {len(self.todo)} to ask)",
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
def choose_anchors(pack: AnchorPack, n: int, metrics: Sequence[str]) -> list[AnchorQuestion]:
    """``n`` pack questions of the gradable ``metrics``: `suggest_questions` over the pack's known
    models (diverse in benchmark, difficulty and embedding), or round-robin over benchmarks for a
    pack without outcomes. Deterministic, so a rerun asks the same questions."""
    if n <= 0:
        raise OnboardingError(f"the number of anchors must be positive, got {n}")
    ids = [q.id for q in pack.questions if q.metric in metrics]
    if not ids:
        raise OnboardingError(f"pack {pack.name!r} has no question a grader here can grade (metrics: {', '.join(metrics)})")
    if pack.models:
        sub = pack.history(question_ids=ids)
        return [pack.questions[ids[s.question_id]] for s in suggest_questions(sub, n)]
    by_bench: dict[str, list[int]] = {}
    for i in ids:
        by_bench.setdefault(pack.questions[i].benchmark, []).append(i)
    order = [qs[r] for r in range(max(map(len, by_bench.values()))) for qs in by_bench.values() if r < len(qs)]
    return [pack.questions[i] for i in order[:n]]


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


# ---------------------------------------------------------------- the run
class _Run:
    """One onboarding run's state: the ledger, the client, the graders, the history to grow."""

    def __init__(self, plan: OnboardingPlan, history: History, client: ModelClient, graders: Mapping[str, Grader],
                 pack: AnchorPack, retry: RetryPolicy) -> None:
        self.plan, self.history, self.client, self.graders, self.pack, self.retry = plan, history, client, graders, pack, retry
        budget = None if plan.max_spend is None else max(plan.max_spend - plan.spent_before, 0.0)
        self.ledger = Ledger(budget=budget, name=f"onboarding {plan.model}", mode="raise")
        self.stop = threading.Event()
        self.skipped_by_cap = 0
        self.failed: list[str] = []
        self._lock = threading.Lock()

    def ask(self, call: PlannedCall) -> AnchorResult | None:
        q = call.question
        if self.stop.is_set():
            with self._lock:
                self.skipped_by_cap += 1
            return None
        try:
            hold = self.ledger.reserve(call.cost)
        except BudgetExceeded:
            self.stop.set()
            with self._lock:
                self.skipped_by_cap += 1
            return None
        try:
            reply, retries = call_with_retries(self.client, call.prompt, self.retry)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal: the rerun asks again
            hold.cancel()
            with self._lock:
                self.failed.append(f"question #{q.id} ({q.benchmark}): call failed: {type(exc).__name__}: {exc}")
            return None
        cost = self.plan.card.cost(reply.input_tokens, reply.output_tokens)
        try:
            grade = self.graders[q.metric].grade(reply.text, q)
        except Exception as exc:  # noqa: BLE001 - a grader failing (e.g. a judge) loses this anchor only
            hold.settle(cost, model=self.plan.model, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)
            with self._lock:
                self.failed.append(f"question #{q.id} ({q.benchmark}): grading failed: {type(exc).__name__}: {exc}")
            return None
        outcome = Outcome(model=self.plan.model, correct=grade.score, output_tokens=reply.output_tokens,
                          input_tokens=reply.input_tokens, latency_s=reply.latency_s, source=ONBOARDING_SOURCE)
        self.history.add(q.text, self.pack.vectors([q.id])[0], [outcome], benchmark=q.benchmark)  # log first, fsynced
        hold.settle(cost, model=self.plan.model, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)
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


def _report(plan: OnboardingPlan, results: list[AnchorResult], run: _Run | None, judge: Any) -> OnboardingReport:
    everything = list(plan.done.values()) + results
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
    )


def plan_onboarding(
    card: ModelCard, history: History, pack: AnchorPack, n_anchors: int, graders: Mapping[str, Grader],
    max_spend: float | None, token_counter: TokenCounter = approx_token_count,
) -> OnboardingPlan:
    """Choose the anchors, read which the log already holds, and price the rest."""
    _check_model_name(history, card.name)
    gradable = [m for m in dict.fromkeys(q.metric for q in pack.questions) if m in graders]
    left_out = sorted({q.metric for q in pack.questions} - set(gradable))
    anchors = choose_anchors(pack, n_anchors, gradable)
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
                          float(np.mean(assumed)))


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
    run_code: bool = False,
    judge: Any = None,
    retry: RetryPolicy | None = None,
    dry_run: bool = False,
    show_progress: bool = True,
    token_counter: TokenCounter = approx_token_count,
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
        run_code: grade code questions by running them, confined (opt-in; POSIX only). Without it,
            code questions are left out of the anchors unless ``graders`` has one for ``"code"``.
        judge: a chat model grading ``judge``-metric questions (`LLMJudgeGrader`).
        retry: back-off on rate limits (default `RetryPolicy()`: 6 retries from 1 s, at most 60 s).
        dry_run: plan and price only; no call is made.
    """
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
    plan = plan_onboarding(card, history, pack, n_anchors, all_graders, max_spend, token_counter)
    if dry_run:
        return OnboardingResult(card, history, plan, [], _report(plan, [], None, None), dry_run=True)
    client = as_client(model, token_counter)
    run = _Run(plan, history, client, all_graders, pack, retry or RetryPolicy())
    results = run.run(concurrency, show_progress)
    if plan.done or results:
        history.cards[card.name] = card
    order = {q.id: i for i, q in enumerate(plan.anchors)}
    results.sort(key=lambda r: order[r.question_id])
    return OnboardingResult(card, history, plan, list(plan.done.values()) + results, _report(plan, results, run, judge_grader))
