"""Training the predictor with TRL: SFT on examples built from a history, then GRPO.

Examples are built exactly as the estimator builds prompts at inference (same anchor retrieval and
prompt), with the target question itself left out of its own anchors (``exclude_ids``). The label is
the target model's true outcome; the analysis is a supplied reasoning trace or, without one, a
templated rationale from the anchor statistics. Needs the optional ``[train]`` extra.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from scope_shared.progress import show_bars
from scope_shared.errors import EstimatorError
from scope_shared.estimators.reasoning.estimator import anchor_examples
from scope_shared.estimators.reasoning.prompt import DEFAULT_TEMPLATE, AnchorExample, build_prompt, check_template
from scope_shared.estimators.reasoning.rewards import PAPER_REWARDS
from scope_shared.history import History

#: (question_id, model, anchors shown) -> analysis text
TraceFn = Callable[[int, str, Sequence[AnchorExample]], str]


@dataclass(frozen=True)
class ReasonerExample:
    """One training example: the prompt, the target answer, and the truth behind it."""

    prompt: str
    completion: str
    model: str
    question_id: int
    true_length: float
    true_correct: bool


def target_answer(analysis: str, length: float, correct: bool) -> str:
    """The answer the predictor should give, in the strict output format."""
    return f"Analysis: {analysis.strip()}\nPredicted Performance: {{len: {int(round(length))}, correct: {'yes' if correct else 'no'}}}"


def templated_rationale(model: str, examples: Sequence[AnchorExample]) -> str:
    """A short analysis from anchor statistics (used when no reasoning trace is supplied)."""
    if not examples:
        return f"There are no anchors for {model}, so I rely on its general behaviour."
    n_ok = sum(e.correct for e in examples)
    lens = [e.length for e in examples if e.length is not None]
    first = examples[0]
    parts = [
        f"{model} answered {n_ok} of the {len(examples)} most similar anchor questions correctly.",
        f"The closest anchor was answered {'correctly' if first.correct else 'incorrectly'}"
        + (f" in {first.length} tokens." if first.length is not None else "."),
    ]
    if lens:
        parts.append(f"Its answers there ran from {min(lens)} to {max(lens)} tokens (median {int(np.median(lens))}).")
    parts.append("The target question is comparable to these anchors, so I expect similar behaviour.")
    return " ".join(parts)


def build_sft_examples(
    history: History,
    models: Sequence[str] | None = None,
    question_ids: Sequence[int] | None = None,
    k: int = 5,
    n_considered: int = 10,
    template: str = DEFAULT_TEMPLATE,
    traces: Mapping[tuple[int, str], str] | TraceFn | None = None,
    max_examples: int | None = None,
    seed: int = 0,
) -> list[ReasonerExample]:
    """Leave-one-out examples for every (question, model) with a known outcome and length.

    ``traces`` maps ``(question_id, model)`` to a reasoning trace (or is a function of
    ``(question_id, model, anchors)``); missing ones get `templated_rationale`. ``max_examples``
    keeps a seeded random sample.
    """
    check_template(template)
    models = list(models or history.models)
    ids = np.arange(len(history)) if question_ids is None else np.asarray(question_ids, dtype=np.int64)
    if len(ids) == 0 or not models:
        raise EstimatorError("no questions or models to build training examples from")
    anchors = history.anchors(history.embeddings[ids], models, n_considered, exclude_ids=ids)
    pairs = []
    for j, m in enumerate(models):
        arr = history.model_arrays(m)
        pos = {int(q): p for p, q in enumerate(arr.ids)}
        for i, qid in enumerate(ids):
            p = pos.get(int(qid))
            if p is not None and np.isfinite(arr.tokens[p]):
                pairs.append((i, j, float(arr.tokens[p]), bool(arr.scores[p] >= 0.5)))
    if max_examples is not None and len(pairs) > max_examples:
        keep = np.sort(np.random.default_rng(seed).choice(len(pairs), max_examples, replace=False))
        pairs = [pairs[t] for t in keep]
    out = []
    for i, j, length, correct in tqdm(pairs, desc="building examples", disable=not show_bars(len(pairs) >= 1000)):
        qid, model = int(ids[i]), models[j]
        shown = anchor_examples(anchors, i, j, history, k)
        trace = None
        if callable(traces):
            trace = traces(qid, model, shown)
        elif traces is not None:
            trace = traces.get((qid, model))
        analysis = trace or templated_rationale(model, shown)
        prompt = build_prompt(model, history.text(qid), shown, template)
        out.append(ReasonerExample(prompt, target_answer(analysis, length, correct), model, qid, length, correct))
    return out


def to_dataset(examples: Sequence[ReasonerExample], conversational: bool = True, with_completion: bool = True):
    """A `datasets.Dataset` in TRL's prompt/completion form (+ truth columns for GRPO rewards)."""
    from datasets import Dataset

    rows: dict[str, list[Any]] = {"prompt": [], "true_length": [], "true_correct": []}
    if with_completion:
        rows["completion"] = []
    for e in examples:
        rows["prompt"].append([{"role": "user", "content": e.prompt}] if conversational else e.prompt)
        rows["true_length"].append(e.true_length)
        rows["true_correct"].append(e.true_correct)
        if with_completion:
            rows["completion"].append(
                [{"role": "assistant", "content": e.completion}] if conversational else e.completion
            )
    return Dataset.from_dict(rows)


def _has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def run_sft(model: Any, tokenizer: Any, examples: Sequence[ReasonerExample], output_dir: str | Path, **config: Any):
    """Supervised fine-tuning on the examples (loss on the answer only); returns the trainer."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(output_dir), **{"report_to": "none", "save_strategy": "no", **config})
    data = to_dataset(examples, conversational=_has_chat_template(tokenizer))
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    return trainer


def run_grpo(
    model: Any,
    tokenizer: Any,
    examples: Sequence[ReasonerExample],
    output_dir: str | Path,
    extra_rewards: Sequence[Callable[..., list[float]]] = (),
    **config: Any,
):
    """GRPO with the paper's rewards (format, correctness, trapezoid length); returns the trainer."""
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=str(output_dir), **{"report_to": "none", "save_strategy": "no", **config})
    data = to_dataset(examples, conversational=_has_chat_template(tokenizer), with_completion=False)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[*PAPER_REWARDS, *extra_rewards],
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


CONFIG_KEYS = {
    "history", "base_model", "output_dir", "models", "max_examples", "k", "n_considered", "seed",
    "traces", "template", "sft", "grpo",
}


def load_traces(path: str | Path) -> dict[tuple[int, str], str]:
    """Reasoning traces from JSON lines ``{"question_id": int, "model": str, "analysis": str}``."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out[(int(row["question_id"]), str(row["model"]))] = str(row["analysis"])
            except (ValueError, KeyError, TypeError) as exc:
                raise EstimatorError(f"{path}:{n}: bad trace line ({exc!r})") from None
    return out


def train_reasoner(config: Mapping[str, Any]) -> dict[str, Any]:
    """Both stages from a config mapping (what ``scope train-reasoner --config`` reads).

    Keys: ``history`` (a history directory), ``base_model`` (a local model directory),
    ``output_dir``; optional ``models``, ``max_examples``, ``k`` (5), ``n_considered`` (10),
    ``seed``, ``traces`` (JSON-lines file), ``template`` (a file holding a custom template),
    ``sft`` and ``grpo`` (keyword arguments for TRL's ``SFTConfig`` / ``GRPOConfig``; set
    ``"grpo": null`` to skip GRPO). Writes ``<output_dir>/sft`` and ``<output_dir>/grpo``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    unknown = set(config) - CONFIG_KEYS
    if unknown:
        raise EstimatorError(f"unknown train-reasoner config key(s): {', '.join(sorted(unknown))}")
    for key in ("history", "base_model", "output_dir"):
        if not config.get(key):
            raise EstimatorError(f"train-reasoner config needs {key!r}")
    base = Path(config["base_model"])
    if not base.is_dir():
        raise EstimatorError(f"base_model directory not found: {base}")
    out = Path(config["output_dir"])
    history = History.load(config["history"])
    template = Path(config["template"]).read_text(encoding="utf-8") if config.get("template") else DEFAULT_TEMPLATE
    traces = load_traces(config["traces"]) if config.get("traces") else None
    examples = build_sft_examples(
        history,
        models=config.get("models"),
        k=int(config.get("k", 5)),
        n_considered=int(config.get("n_considered", 10)),
        template=template,
        traces=traces,
        max_examples=config.get("max_examples"),
        seed=int(config.get("seed", 0)),
    )
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True)
    report: dict[str, Any] = {"examples": len(examples)}
    sft = run_sft(model, tokenizer, examples, out / "sft", **dict(config.get("sft") or {}))
    sft.save_model(str(out / "sft"))
    tokenizer.save_pretrained(str(out / "sft"))
    report["sft"] = {"dir": str(out / "sft"), "log": sft.state.log_history[-1:]}
    if config.get("grpo", {}) is not None:
        grpo = run_grpo(sft.model, tokenizer, examples, out / "grpo", **dict(config.get("grpo") or {}))
        grpo.save_model(str(out / "grpo"))
        tokenizer.save_pretrained(str(out / "grpo"))
        report["grpo"] = {"dir": str(out / "grpo"), "log": grpo.state.log_history[-1:]}
    (out / "train_report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return report

