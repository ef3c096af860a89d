"""Backends that run the predictor: a local transformers causal LM, or any LangChain chat model.

A backend turns prompts into answers. Each answer is a `Sample`: the generated text and, where the
backend can measure it, ``p_yes``, the probability the predictor puts on ``yes`` rather than ``no``
at the ``correct:`` slot of its prediction line. Without ``p_yes`` the estimator falls back to the
share of ``yes`` over several samples (``n_samples``).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from scope_shared.progress import show_bars
from scope_shared.errors import EstimatorError
from scope_shared.estimators.reasoning.parser import PredictionParseError, parse_prediction


@dataclass(frozen=True)
class Sample:
    """One generated answer; ``p_yes`` is None where the backend cannot measure it; ``error`` says
    why a call gave no answer."""

    text: str
    p_yes: float | None = None
    error: str | None = None


class ReasoningBackend(ABC):
    """Runs the predictor on prompts; returns ``n_samples`` answers per prompt."""

    name: str = "backend"
    n_samples: int = 1

    @abstractmethod
    def generate(self, prompts: Sequence[str]) -> list[list[Sample]]:
        """Answers for every prompt, in order."""


# --------------------------------------------------------------------------- local transformers
class TransformersBackend(ReasoningBackend):
    """A local causal LM (a directory holding weights and tokenizer; the hub is never contacted).

    Prompts are wrapped in the tokenizer's chat template (the released checkpoint uses Qwen's) and
    generated in batches of ``batch_size`` with left padding. The token prefix shared by a batch's
    prompts (the template header, and the whole question block when candidates share anchors) is
    run once; its KV cache is copied to every row and the rows are padded *between* prefix and
    suffix, so each batch only pre-fills the differing suffixes. ``p_yes`` comes from the model's
    next-token probabilities of `` yes`` versus `` no`` right after ``correct:`` on its own
    prediction line (one extra forward pass per batch).

    Args:
        path: the model directory (or pass ``model`` and ``tokenizer`` objects).
        max_new_tokens, temperature: generation settings (release: 1536, 0.2; temperature 0 = greedy).
        n_samples: answers per prompt (sampled when > 1).
        score_yes_no: measure ``p_yes``; without it the estimator uses the share of yes samples.
        reuse_prefix_cache: the shared-prefix KV-cache reuse described above.
        device, dtype: where and how to load the model (default: CUDA if available, else CPU).
    """

    name = "transformers"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        max_new_tokens: int = 1536,
        temperature: float = 0.2,
        n_samples: int = 1,
        batch_size: int = 8,
        score_yes_no: bool = True,
        reuse_prefix_cache: bool = True,
        use_chat_template: bool = True,
        device: str | None = None,
        dtype: Any = None,
        show_progress: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if (model is None) != (tokenizer is None):
            raise EstimatorError("pass both model and tokenizer, or a path")
        if model is None:
            if path is None or not Path(path).is_dir():
                raise EstimatorError(f"predictor model directory not found: {path!r}")
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype or "auto")
            model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if n_samples < 1 or batch_size < 1 or max_new_tokens < 1 or temperature < 0:
            raise EstimatorError("need n_samples, batch_size, max_new_tokens >= 1 and temperature >= 0")
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.score_yes_no = score_yes_no
        self.reuse_prefix_cache = reuse_prefix_cache
        self.use_chat_template = use_chat_template and bool(getattr(tokenizer, "chat_template", None))
        self.show_progress = show_progress
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def render(self, prompt: str) -> str:
        """The exact text fed to the model (chat-wrapped when the tokenizer has a template)."""
        if not self.use_chat_template:
            return prompt
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=not self.use_chat_template)["input_ids"]

    def generate(self, prompts: Sequence[str]) -> list[list[Sample]]:
        out: list[list[Sample]] = []
        starts = range(0, len(prompts), self.batch_size)
        for s in tqdm(starts, desc="reasoning predictor", disable=not show_bars(self.show_progress)):
            out.extend(self._generate_batch(list(prompts[s : s + self.batch_size])))
        return out

    def _generate_batch(self, prompts: list[str]) -> list[list[Sample]]:
        import torch
        from transformers import DynamicCache

        texts = [self.render(p) for p in prompts]
        enc = [self._ids(t) for t in texts]
        prefix = _common_prefix(enc) if self.reuse_prefix_cache and len(enc) > 1 else 0
        pad = self.tokenizer.pad_token_id
        width = max(len(e) - prefix for e in enc)
        ids, mask = [], []
        for e in enc:  # [shared prefix | padding | own suffix]
            n_pad = width - (len(e) - prefix)
            ids.append(e[:prefix] + [pad] * n_pad + e[prefix:])
            mask.append([1] * prefix + [0] * n_pad + [1] * (len(e) - prefix))
        n = self.n_samples
        kwargs: dict[str, Any] = {
            "input_ids": torch.tensor(ids, device=self.device),
            "attention_mask": torch.tensor(mask, device=self.device),
            "max_new_tokens": self.max_new_tokens,
            "num_return_sequences": n,
            "pad_token_id": pad,
        }
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            if prefix > 0:
                cache = DynamicCache()
                self.model(
                    input_ids=torch.tensor([enc[0][:prefix]], device=self.device),
                    use_cache=True,
                    **{self._cache_kw: cache},
                )
                cache.batch_repeat_interleave(len(prompts) * n)
                kwargs[self._cache_kw] = cache
                if n > 1:  # generate expands inputs row-wise; the cache is already expanded
                    kwargs["input_ids"] = kwargs["input_ids"].repeat_interleave(n, 0)
                    kwargs["attention_mask"] = kwargs["attention_mask"].repeat_interleave(n, 0)
                    kwargs["num_return_sequences"] = 1
            gen = self.model.generate(**kwargs)
        new = gen[:, len(ids[0]) :]
        answers = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        p_yes: list[float | None] = [None] * len(answers)
        if self.score_yes_no:
            p_yes = self._p_yes([texts[i // n] for i in range(len(answers))], answers)
        return [[Sample(answers[i * n + r], p_yes[i * n + r]) for r in range(n)] for i in range(len(prompts))]

    def _p_yes(self, contexts: list[str], answers: list[str]) -> list[float | None]:
        """P(yes) / (P(yes) + P(no)) at the ``correct:`` slot of each parsable answer.

        With single-token `` yes`` / `` no`` (Qwen and most BPE vocabularies) one sequence per answer
        is scored at its last position; otherwise both continuations are scored. Only the last few
        positions' logits are materialised (``logits_to_keep``), in chunks of ``batch_size``.
        """
        yes = self.tokenizer(" yes", add_special_tokens=False)["input_ids"]
        no = self.tokenizer(" no", add_special_tokens=False)["input_ids"]
        single = len(yes) == 1 and len(no) == 1
        seqs: list[list[int]] = []
        owner: list[int] = []
        for i, (ctx, ans) in enumerate(zip(contexts, answers)):
            try:
                slot = parse_prediction(ans).slot_prefix
            except PredictionParseError:
                continue
            base = self._ids(ctx) + self.tokenizer(slot, add_special_tokens=False)["input_ids"]
            seqs.extend([base] if single else [base + yes, base + no])
            owner.append(i)
        out: list[float | None] = [None] * len(answers)
        if not seqs:
            return out
        keep = 1 if single else max(len(yes), len(no)) + 1
        scores: list[float] = []
        per = 1 if single else 2
        step = max(per, self.batch_size - self.batch_size % per)
        for s in range(0, len(seqs), step):
            scores.extend(self._score(seqs[s : s + step], keep, yes, no, single))
        for r, i in enumerate(owner):  # two numbers per answer either way: log P(yes), log P(no)
            ly, ln = scores[2 * r], scores[2 * r + 1]
            out[i] = _sigmoid(ly - ln)
        return out

    def _score(self, seqs: list[list[int]], keep: int, yes: list[int], no: list[int], single: bool) -> list[float]:
        """Log-probabilities: (yes, no) per sequence if ``single``, else one continuation per sequence."""
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        att = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=att, logits_to_keep=keep).logits
        logp = torch.log_softmax(logits[:, -keep:].float(), -1)
        out: list[float] = []
        for r in range(len(seqs)):
            if single:
                out += [float(logp[r, -1, yes[0]]), float(logp[r, -1, no[0]])]
            else:
                cont = (yes, no)[r % 2]
                # logits at index -1 - t predict token len(cont) - t; continuation starts len(cont) from the end
                out.append(sum(float(logp[r, keep - 1 - len(cont) + t, tok]) for t, tok in enumerate(cont)))
        return out


def _sigmoid(x: float) -> float | None:
    """1 / (1 + exp(-x)) without overflow; None for NaN (the estimator then votes instead)."""
    if x != x:
        return None
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-min(x, 700.0)))
    z = math.exp(max(x, -700.0))
    return z / (1.0 + z)


def _common_prefix(seqs: list[list[int]]) -> int:
    """Length of the token prefix all sequences share, leaving each at least one own token."""
    limit = min(len(s) for s in seqs) - 1
    n = 0
    first = seqs[0]
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return n


# --------------------------------------------------------------------------- LangChain
class LangChainBackend(ReasoningBackend):
    """Any LangChain chat model as the predictor (e.g. a hosted small model).

    Calls ``chat_model.batch`` (so the provider's concurrency applies). ``p_yes`` is read from
    token log-probabilities when the provider returns them in ``response_metadata["logprobs"]``
    (OpenAI's format: ``content`` entries with ``token``, ``logprob``, ``top_logprobs``; enable
    them on the model, e.g. ``ChatOpenAI(logprobs=True, top_logprobs=5)``); otherwise the
    estimator uses the share of ``yes`` over ``n_samples`` answers.
    """

    name = "langchain"

    def __init__(self, chat_model: Any, n_samples: int = 1, system: str | None = None, max_concurrency: int | None = None) -> None:
        if n_samples < 1:
            raise EstimatorError("n_samples must be >= 1")
        self.chat_model = chat_model
        self.n_samples = n_samples
        self.system = system
        self.max_concurrency = max_concurrency

    def generate(self, prompts: Sequence[str]) -> list[list[Sample]]:
        from langchain_core.messages import HumanMessage, SystemMessage

        def messages(p: str) -> list[Any]:
            return ([SystemMessage(self.system)] if self.system else []) + [HumanMessage(p)]

        inputs = [messages(p) for p in prompts for _ in range(self.n_samples)]
        config = {"max_concurrency": self.max_concurrency} if self.max_concurrency else None
        # one failing call (rate limit, timeout) spoils only its own pair: it is retried, then falls back
        replies = self.chat_model.batch(inputs, config=config, return_exceptions=True)
        samples = [
            Sample("", error=f"call failed: {r!r}"[:200]) if isinstance(r, Exception) else Sample(_text(r), p_yes_from_logprobs(getattr(r, "response_metadata", None)))
            for r in replies
        ]
        n = self.n_samples
        return [samples[i * n : (i + 1) * n] for i in range(len(prompts))]


def _text(reply: Any) -> str:
    text = getattr(reply, "text", None)
    if isinstance(text, str):  # langchain-core >= 1: a str property
        return str(text)
    if callable(text):  # older langchain-core: a method
        text = text()
    if isinstance(text, str):
        return text
    content = getattr(reply, "content", reply)
    return content if isinstance(content, str) else str(content)


def p_yes_from_logprobs(metadata: Any) -> float | None:
    """P(yes)/(P(yes)+P(no)) at the last yes/no token of an OpenAI-style logprobs payload."""
    if not isinstance(metadata, dict):
        return None
    lp = metadata.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else lp
    if not isinstance(content, list):
        return None
    for entry in reversed(content):
        if not isinstance(entry, dict) or str(entry.get("token", "")).strip().lower() not in ("yes", "no"):
            continue
        probs = {"yes": 0.0, "no": 0.0}
        alts = entry.get("top_logprobs") or [{"token": entry["token"], "logprob": entry.get("logprob", 0.0)}]
        for alt in alts:
            t = str(alt.get("token", "")).strip().lower() if isinstance(alt, dict) else ""
            if t in probs:
                try:
                    probs[t] += math.exp(min(float(alt.get("logprob", -math.inf)), 0.0))
                except (TypeError, ValueError):
                    return None
        total = probs["yes"] + probs["no"]
        if not (total > 0 and math.isfinite(total)):
            return None
        return probs["yes"] / (probs["yes"] + probs["no"])
    return None
