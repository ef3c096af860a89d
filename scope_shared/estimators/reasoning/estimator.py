"""`ReasoningEstimator`: the SCOPE paper's reasoning predictor behind the `Estimator` interface.

For every (query, candidate) pair it shows the predictor the candidate's results on the ``k`` most
similar anchors (out of the ``n_considered`` retrieved), lets it reason, and parses its predicted
output length and correctness. Answers that do not parse are asked again once; if they still fail
(or the backend raises, or its numbers are not a probability and a plausible length), that pair
gets the ``fallback`` estimator's estimate and the rationale says so. A routing call is never
failed by the predictor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from scope_shared.errors import EstimatorError
from scope_shared.estimators import Estimator, KNNEstimator, RawEstimates
from scope_shared.estimators.reasoning.backends import ReasoningBackend, Sample
from scope_shared.estimators.reasoning.parser import ParsedPrediction, PredictionParseError, parse_prediction
from scope_shared.estimators.reasoning.prompt import DEFAULT_TEMPLATE, AnchorExample, build_prompt, check_template
from scope_shared.history import Anchors, History

log = logging.getLogger(__name__)


def truncate_anchors(anchors: Anchors, k: int) -> Anchors:
    """The first ``k`` anchors (the most similar: `History.anchors` sorts by similarity)."""
    return Anchors(
        anchors.models, anchors.ids[..., :k], anchors.sims[..., :k], anchors.scores[..., :k],
        anchors.tokens[..., :k], anchors.mask[..., :k],
    )


def anchor_examples(anchors: Anchors, i: int, j: int, history: History, k: int) -> list[AnchorExample]:
    """The prompt's anchors for query ``i`` and model ``j``: the ``k`` most similar valid ones."""
    out = []
    for slot in np.flatnonzero(anchors.mask[i, j])[:k]:
        tok = float(anchors.tokens[i, j, slot])
        out.append(
            AnchorExample(
                question=history.text(int(anchors.ids[i, j, slot])),
                length=int(round(tok)) if np.isfinite(tok) else None,
                correct=bool(np.nan_to_num(anchors.scores[i, j, slot]) >= 0.5),
            )
        )
    return out


def combine(parsed: Sequence[ParsedPrediction], samples: Sequence[Sample]) -> tuple[float, float, str]:
    """(p_correct, output tokens, analysis) from a pair's well-formed samples.

    ``p_correct`` is the mean measured ``p_yes`` where the backend gave one, else the share of
    samples predicting ``yes``; the length is the median prediction; the analysis is the first.
    """
    measured = [float(s.p_yes) for s in samples if _probability(s.p_yes)]
    p = float(np.mean(measured)) if measured else float(np.mean([x.correct for x in parsed]))
    return p, float(np.median([float(x.length) for x in parsed])), parsed[0].analysis


def _probability(v: object) -> bool:
    """A backend's ``p_yes`` that can be used: a finite number in [0, 1] (NaN logits give NaN)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0.0 <= v <= 1.0


class ReasoningEstimator(Estimator):
    """The paper's predictor (any backend) with strict parsing, one retry and a kNN fallback.

    Args:
        backend: a `ReasoningBackend` (`TransformersBackend` or `LangChainBackend`).
        k: anchors shown in each prompt (paper: 5).
        n_considered: anchors retrieved per pair, of which the ``k`` most similar are shown (paper: 10).
        fallback: estimator for pairs the predictor could not answer (default `KNNEstimator()`).
        template: the prompt template (default: the released checkpoint's layout).
        retries: how many times a malformed pair is asked again (default 1).
    """

    name = "reasoning"

    def __init__(
        self,
        backend: ReasoningBackend,
        k: int = 5,
        n_considered: int = 10,
        fallback: Estimator | None = None,
        template: str = DEFAULT_TEMPLATE,
        retries: int = 1,
    ) -> None:
        if k < 1 or n_considered < k or retries < 0:
            raise EstimatorError("ReasoningEstimator needs 1 <= k <= n_considered and retries >= 0")
        self.backend = backend
        self.k_prompt = k
        self.n_considered = n_considered
        self.fallback = fallback if fallback is not None else KNNEstimator()
        self.template = check_template(template)
        self.retries = retries
        #: anchors retrieved by the router: enough for the prompt and for the fallback
        self.k = max(n_considered, self.fallback.k)

    def __repr__(self) -> str:
        return f"ReasoningEstimator(backend={self.backend.name}, k={self.k_prompt}, fallback={self.fallback!r})"

    def prompts(self, queries: Sequence[str], anchors: Anchors, history: History) -> list[str]:
        """Row-major prompts, one per (query, model)."""
        return [
            build_prompt(m, q, anchor_examples(anchors, i, j, history, self.k_prompt), self.template)
            for i, q in enumerate(queries)
            for j, m in enumerate(anchors.models)
        ]

    def _ask(self, prompts: list[str]) -> tuple[list[list[Sample]] | None, str | None]:
        try:
            answers = self.backend.generate(prompts)
            if len(answers) != len(prompts):
                raise EstimatorError(f"backend returned {len(answers)} answers for {len(prompts)} prompts")
            return answers, None
        except Exception as exc:  # never fail a routing call because of the predictor
            log.warning("reasoning backend failed: %r", exc)
            return None, f"backend error: {exc!r}"[:300]

    def predict(
        self, queries: Sequence[str], query_embs: np.ndarray, anchors: Anchors, history: History
    ) -> RawEstimates:
        n_q, n_m = len(queries), len(anchors.models)
        prompts = self.prompts(queries, anchors, history)
        results: list[tuple[float, float, str] | None] = [None] * len(prompts)
        errors: list[str] = ["not asked"] * len(prompts)
        todo = list(range(len(prompts)))
        for _attempt in range(self.retries + 1):
            if not todo:
                break
            answers, err = self._ask([prompts[t] for t in todo])
            still = []
            for pos, t in enumerate(todo):
                if answers is None:
                    errors[t] = err or "backend error"
                    still.append(t)
                    continue
                parsed, good, last_err = [], [], None
                for s in answers[pos] if isinstance(answers[pos], (list, tuple)) else ():
                    try:
                        parsed.append(parse_prediction(getattr(s, "text", None)))
                        good.append(s)
                    except PredictionParseError as exc:
                        last_err = getattr(s, "error", None) or str(exc)
                if parsed:
                    results[t] = combine(parsed, good)
                else:
                    errors[t] = last_err or "no answer"
                    still.append(t)
            todo = still
        p = np.zeros(n_q * n_m)
        tok = np.full(n_q * n_m, np.nan)
        rationales: list[str] = [""] * (n_q * n_m)
        for t, r in enumerate(results):
            if r is not None:
                p[t], tok[t], rationales[t] = r
        if todo:
            fb = self.fallback.predict(queries, query_embs, truncate_anchors(anchors, self.fallback.k), history)
            fp, ft = fb.p_correct.reshape(-1), fb.output_tokens.reshape(-1)
            for t in todo:
                p[t], tok[t] = fp[t], ft[t]
                rationales[t] = (
                    f"no estimate from the reasoning predictor after {self.retries + 1} attempt(s) "
                    f"({errors[t]}); {self.fallback.name} estimate used"
                )
        n_anchors = np.minimum(anchors.mask[..., : self.n_considered].sum(-1), self.k_prompt)
        return RawEstimates(
            p_correct=np.clip(p.reshape(n_q, n_m), 0.0, 1.0),
            output_tokens=tok.reshape(n_q, n_m),
            n_anchors=n_anchors,
            rationales=[rationales[i * n_m : (i + 1) * n_m] for i in range(n_q)],
        )
