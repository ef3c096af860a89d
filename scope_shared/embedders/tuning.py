"""Tune a static embedder for routing: neighbours should share outcomes, not only topics.

The kNN estimator predicts a model's chance on a question from the outcomes of its nearest history
questions. A general-purpose embedding puts questions near each other when they are about the same
thing; routing needs them near when the same models get them right and wrong, at similar lengths.
This trains that directly, on the history part only:

- the model: the static token table ``T`` of a base embedder (``"fast"``), a learned weight per token
  (``exp(u_t)``, starting at 1) and a learned square map ``W`` (starting at the identity). A text is
  still the normalised mean of its tokens' rows, now of ``diag(exp u) T W``, so the result is again a
  plain static table, saved in the model2vec layout and read by `StaticEmbedder` (same speed).
  ``TuningConfig.centre`` first subtracts the tuning texts' mean vector (`centred_table`): static
  vectors share one large direction (the mean of llmrouter-9's question vectors has norm 0.54
  under ``fast``, 0.23 under MiniLM), which pushes every cosine toward 1. Centred, ``fast`` routed
  +0.31 AUC points better than ``fast`` on the validation parts (mean of 8 settings, 5 seeds) but
  only +0.06 on the test parts, and outcome training on a centred table lost 5.7 points on
  routerbench-11's left-out benchmark (`benchmarks/results/routing_embedder_centring.txt`), so it
  is off by default;
- the loss: the kNN estimator's own prediction (top-``k`` anchors weighed ``exp((sim - 1) / t)``,
  shrunk toward each model's accuracy) of each training question's outcomes from the other training
  questions, as binary log-loss over every known (question, model) outcome, plus the squared error of
  its standardised log output length where lengths are known; each benchmark weighs the same;
- early stopping on a seeded validation part of the history (stratified by benchmark; the priors
  and length scales come from the rest): the saved table is the one with the lowest validation loss,
  the base table itself if training never improves it. ``val_model_fraction`` can also hold a
  seeded share of the known models out of the gradient, stopping on their outcomes only (a guard
  against a table that fits the known models without transferring); on the validation parts of
  llmrouter-9 and routerbench-11 (5 seeds) it routed worse than stopping on held-out questions
  (it trains on a third fewer models), so it is off by default.

Only what `TuningData` holds is read: pass it the history part, and only the models whose outcomes
may be used (a held-out model's outcomes never are).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from scope_shared.embedders.distill import BUILD_FILE, TOKENIZER_FILE, write_static_model
from scope_shared.embedders.static import StaticEmbedder, Truncation
from scope_shared.errors import EmbedderError

#: the name that selects the routing-tuned embedder (``as_embedder("routing")``)
ROUTING = "routing"
#: marks a folder written by `save_tuned` (its ``scope_embedder.json`` has ``"kind": TUNED_KIND``)
TUNED_KIND = "routing-tuned"


@dataclass(frozen=True)
class TuningConfig:
    """How the routing embedder is trained (defaults: see the module doc; chosen on validation parts).

    ``time_budget_s`` stops training after that many seconds (the best table so far is kept; a budget
    makes the result depend on the machine's speed, so reproducible runs leave it None and cap epochs);
    ``val_model_fraction``: the share of known models held out of the gradient as the stopping signal
    (0, the default: stop on every model's outcomes on the held-out questions);
    ``min_questions`` / ``min_outcomes`` refuse histories too small to learn from; ``centre``
    subtracts the tuning texts' mean vector from the base table first (`centred_table`); with
    ``max_epochs=0`` the result is the (centred) base table, no outcome training. Both are off by
    default: on the test parts neither routed better than the default (see the module doc)."""

    seed: int = 0
    max_epochs: int = 20
    patience: int = 3
    time_budget_s: float | None = 300.0
    val_fraction: float = 0.2
    val_model_fraction: float = 0.0
    batch_size: int = 256
    learning_rate: float = 3e-3
    token_learning_rate: float = 3e-2
    token_decay: float = 1e-4
    k: int = 40
    temperature: float = 0.3
    prior_weight: float = 1.0
    length_weight: float = 0.3
    min_questions: int = 200
    min_outcomes: int = 2000
    centre: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise EmbedderError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0 <= self.val_model_fraction < 1:
            raise EmbedderError(f"val_model_fraction must be in [0, 1), got {self.val_model_fraction}")
        if int(self.max_epochs) < 0:
            raise EmbedderError(f"max_epochs must be at least 0, got {self.max_epochs}")
        for name in ("patience", "batch_size", "k", "min_questions", "min_outcomes"):
            if int(getattr(self, name)) < 1:
                raise EmbedderError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("learning_rate", "token_learning_rate", "temperature"):
            if not getattr(self, name) > 0:
                raise EmbedderError(f"{name} must be positive, got {getattr(self, name)}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise EmbedderError(f"time_budget_s must be positive (or None), got {self.time_budget_s}")


@dataclass
class TuningData:
    """What training reads: history questions, known models' outcomes, optionally lengths and benchmarks.

    ``scores``: (n_questions, n_models) in [0, 1], NaN where the model has no outcome;
    ``output_tokens``: same shape, NaN where unknown (or None); ``groups``: each question's benchmark
    (or None): benchmarks weigh the same in the loss and the validation part is stratified by them."""

    texts: list[str]
    scores: np.ndarray
    output_tokens: np.ndarray | None = None
    groups: Sequence[str | None] | None = None
    models: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        n = len(self.texts)
        if self.scores.ndim != 2 or self.scores.shape[0] != n:
            raise EmbedderError(f"tuning data: scores of shape {self.scores.shape} for {n} questions")
        s = self.scores[np.isfinite(self.scores)]
        if s.size and (s.min() < 0 or s.max() > 1):
            raise EmbedderError("tuning data: scores must lie in [0, 1] (NaN = no outcome)")
        if self.output_tokens is not None:
            self.output_tokens = np.asarray(self.output_tokens, dtype=np.float64)
            if self.output_tokens.shape != self.scores.shape:
                raise EmbedderError("tuning data: output_tokens must have the shape of scores")
        if self.groups is not None and len(self.groups) != n:
            raise EmbedderError(f"tuning data: {len(self.groups)} benchmarks for {n} questions")


@dataclass
class TuningReport:
    """What training did: sizes, losses (validation at the start = the base embedder), time."""

    n_train: int
    n_val: int
    n_models: int
    n_outcomes: int
    epochs: int
    best_epoch: int
    val_loss_base: float
    val_loss_best: float
    seconds: float
    stopped: str  # "patience", "time budget" or "max epochs"
    val_models: list[str] = field(default_factory=list)  # held out of the gradient: the stopping signal

    @property
    def improved(self) -> bool:
        return self.best_epoch > 0


def check_enough(data: TuningData, config: TuningConfig) -> int:
    """The number of usable outcomes; raises `ScopeError` naming what is missing when too few."""
    known = np.isfinite(data.scores)
    n_q = int(known.any(axis=1).sum())
    n_out = int(known.sum())
    if n_q < config.min_questions or n_out < config.min_outcomes:
        raise EmbedderError(
            f"not enough outcomes to tune a routing embedder: {n_q} questions with an outcome and {n_out} "
            f"outcomes in all (at least {config.min_questions} questions and {config.min_outcomes} outcomes "
            "are needed; add outcomes of known models, e.g. from an anchor pack)"
        )
    return n_out


def validation_split(groups: Sequence[str | None] | None, n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) positions, stratified by benchmark (one group if there are none)."""
    rng = np.random.default_rng([seed, 26])
    g = np.asarray(["" if b is None else str(b) for b in groups] if groups is not None else [""] * n)
    train, val = [], []
    for name in sorted(set(g.tolist())):
        idx = np.flatnonzero(g == name)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def validation_models(known: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded column positions of the models held out of the gradient (the stopping signal): a
    ``fraction`` of the models with outcomes, at least one and never all of them; none when
    ``fraction`` is 0 or fewer than two models have outcomes."""
    have = np.flatnonzero(known.any(axis=0))
    if fraction <= 0 or len(have) < 2:
        return np.array([], dtype=np.int64)
    n_val = min(max(1, int(round(len(have) * fraction))), len(have) - 1)
    rng = np.random.default_rng([seed, 27])
    return np.sort(rng.choice(have, size=n_val, replace=False)).astype(np.int64)


def group_weights(groups: Sequence[str | None] | None, n: int) -> np.ndarray:
    """Per-question weights so that each benchmark weighs the same (mean 1)."""
    if groups is None:
        return np.ones(n)
    g = np.asarray(["" if b is None else str(b) for b in groups])
    _, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return w / w.mean()


def pooling_matrix(base: StaticEmbedder, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR parts (indptr, token ids, weights 1/len) of the mean over each text's kept tokens; a text
    with no known token reads the ``[UNK]`` row as `StaticEmbedder` does."""
    unk = base.unknown_id
    indptr, ids = [0], []
    for kept in base.token_ids_batch(list(texts)):
        kept = kept or [unk if unk is not None else 0]
        ids.extend(kept)
        indptr.append(len(ids))
    indptr_a = np.asarray(indptr, dtype=np.int64)
    lengths = np.diff(indptr_a)
    return indptr_a, np.asarray(ids, dtype=np.int64), np.repeat(1.0 / lengths, lengths).astype(np.float32)


def _pooling(pooled: tuple[np.ndarray, np.ndarray, np.ndarray], n_tokens: int):  # -> scipy csr_matrix
    """The (texts x tokens) sparse matrix of `pooling_matrix`'s parts: a text's row averages its tokens."""
    from scipy.sparse import csr_matrix

    indptr, ids, vals = pooled
    return csr_matrix((vals, ids, indptr), shape=(len(indptr) - 1, n_tokens))


def embed_pooled(table: np.ndarray, pooled: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Unit vectors of pre-tokenized texts under ``table`` (what `StaticEmbedder` gives, without tokenizing)."""
    x = np.asarray(_pooling(pooled, table.shape[0]) @ table.astype(np.float32), dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centred_table(table: np.ndarray, pooled: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """``table`` less the mean of the pooled (unnormalised) texts' vectors, from every row.

    A text's vector is the mean of its tokens' rows, so this subtracts the same vector from every
    text's: the texts are centred, and the result is still a plain table."""
    t = table.astype(np.float32)
    s = _pooling(pooled, t.shape[0])
    mean = np.asarray(s.sum(axis=0)) @ t / s.shape[0]  # token counts first: no (texts x dim) matrix
    return t - mean.astype(np.float32)


def tune_table(base: StaticEmbedder, data: TuningData, config: TuningConfig | None = None,
               show_progress: bool = False,
               pooled: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, TuningReport]:
    """Train the routing table from ``base`` on ``data`` (see the module doc): (table, report).

    ``pooled``: `pooling_matrix` of ``data.texts`` if already computed (benchmarks reuse it)."""
    import torch
    from tqdm.auto import tqdm

    cfg = config or TuningConfig()
    check_enough(data, cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: one thread is faster (and its sums are reproducible)
    try:
        return _tune(torch, tqdm, base, data, cfg, show_progress, pooled)
    finally:
        torch.set_num_threads(threads)


def _tune(torch, tqdm, base, data, cfg, show_progress, pooled):  # type: ignore[no-untyped-def]
    n_outcomes = check_enough(data, cfg)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    n = len(data.texts)
    indptr, ids, vals = pooled if pooled is not None else pooling_matrix(base, data.texts)
    if len(indptr) != n + 1:
        raise EmbedderError("pooled token matrix does not match the tuning texts")

    # only tokens that occur in the data get a weight to learn (the others keep weight 1); texts as
    # padded rows of (local token id, 1/len) so that any batch of them is embedded in one call
    used, local = np.unique(ids, return_inverse=True)
    table = centred_table(base.table, (indptr, ids, vals)) if cfg.centre else base.table.astype(np.float32)
    sub = torch.from_numpy(table[used])
    lengths = np.diff(indptr)
    width = int(lengths.max())
    col = np.arange(len(ids)) - np.repeat(indptr[:-1], lengths)
    row = np.repeat(np.arange(n), lengths)
    pad_ids = np.zeros((n, width), dtype=np.int64)
    pad_w = np.zeros((n, width), dtype=np.float32)
    pad_ids[row, col], pad_w[row, col] = local, vals
    pad_ids_t, pad_w_t = torch.from_numpy(pad_ids), torch.from_numpy(pad_w)

    tr, va = validation_split(data.groups, n, cfg.val_fraction, cfg.seed)
    tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
    scores = data.scores
    known = np.isfinite(scores)
    in_train = np.zeros(n, dtype=bool)
    in_train[tr] = True  # priors and length scales from the training questions only
    y = torch.from_numpy(np.nan_to_num(scores)).float()
    mask = torch.from_numpy(known).float()
    prior = torch.from_numpy(np.array([scores[known[:, j] & in_train, j].mean() if (known[:, j] & in_train).any()
                                       else 0.5 for j in range(scores.shape[1])])).float()
    len_y = len_mask = None
    if data.output_tokens is not None and cfg.length_weight > 0:
        lt = np.log1p(np.where(known, data.output_tokens, np.nan))
        ok = np.isfinite(lt)
        fit = ok & in_train[:, None]
        if ok.any():
            mu = np.array([lt[fit[:, j], j].mean() if fit[:, j].any() else 0.0 for j in range(lt.shape[1])])
            sd = np.array([lt[fit[:, j], j].std() if fit[:, j].sum() > 1 else 1.0 for j in range(lt.shape[1])])
            z = np.where(ok, (lt - mu) / np.maximum(sd, 1e-6), 0.0)
            len_y, len_mask = torch.from_numpy(z).float(), torch.from_numpy(ok).float()
    qweight = torch.from_numpy(group_weights(data.groups, n)).float()
    # the gradient reads the training models' outcomes only; validation the held-out models' (if any)
    held = validation_models(known, cfg.val_model_fraction, cfg.seed)
    val_cols = np.zeros(scores.shape[1], dtype=bool)
    val_cols[held] = True
    train_cols = torch.from_numpy(~val_cols if held.size else np.ones_like(val_cols)).float()
    val_cols_t = torch.from_numpy(val_cols if held.size else np.ones_like(val_cols)).float()


    dim = sub.shape[1]
    w_map = torch.nn.Parameter(torch.eye(dim))
    u = torch.nn.Parameter(torch.zeros(len(used)))
    opt = torch.optim.Adam([{"params": [w_map], "lr": cfg.learning_rate},
                            {"params": [u], "lr": cfg.token_learning_rate, "weight_decay": cfg.token_decay}])

    def embed(rows: torch.Tensor) -> torch.Tensor:
        """Unit vectors of texts ``rows`` under the current token weights and map."""
        ids_r = pad_ids_t[rows]
        pooled_rows = torch.nn.functional.embedding_bag(
            ids_r, sub, mode="sum", per_sample_weights=pad_w_t[rows] * torch.exp(u)[ids_r])
        return torch.nn.functional.normalize(pooled_rows @ w_map, dim=1)

    def loss_of(zq: torch.Tensor, queries: torch.Tensor, bank: torch.Tensor, anchors: torch.Tensor,
                exclude_self: bool, cols: torch.Tensor) -> torch.Tensor:
        """The kNN estimator's loss on ``queries`` (vectors ``zq``) from ``anchors`` (vectors ``bank``),
        over the outcomes of the models marked in ``cols`` (one per model, 0 or 1)."""
        sims = zq @ bank.T
        if exclude_self:
            sims = sims.masked_fill(queries[:, None] == anchors[None, :], -2.0)
        k = min(cfg.k, len(anchors) - 1)
        top, pos = torch.topk(sims, k, dim=1)
        w = torch.exp((top - 1.0) / cfg.temperature)  # (q, k)
        a = anchors[pos]  # (q, k) anchor rows
        ya, ma = y[a], mask[a]  # (q, k, m)
        wm = w[:, :, None] * ma
        p = ((wm * ya).sum(1) + cfg.prior_weight * prior) / (wm.sum(1) + cfg.prior_weight)
        p = p.clamp(1e-4, 1 - 1e-4)
        yq, mq = y[queries], mask[queries] * cols
        bce = -(yq * torch.log(p) + (1 - yq) * torch.log(1 - p))
        qw = qweight[queries][:, None]
        loss = (bce * mq * qw).sum() / (mq * qw).sum().clamp_min(1e-9)
        if len_y is not None and len_mask is not None:
            lm = w[:, :, None] * len_mask[a]
            pred = (lm * len_y[a]).sum(1) / (lm.sum(1) + 1e-6)
            lq = len_mask[queries] * cols * (lm.sum(1) > 0).float()
            mse = ((pred - len_y[queries]) ** 2 * lq * qw).sum() / (lq * qw).sum().clamp_min(1e-9)
            loss = loss + cfg.length_weight * mse
        return loss

    def anchor_bank() -> torch.Tensor:
        with torch.no_grad():
            return embed(tr_t)

    def val_loss(bank: torch.Tensor) -> float:
        with torch.no_grad():
            return float(loss_of(embed(va_t), va_t, bank, tr_t, exclude_self=False, cols=val_cols_t))

    bank = anchor_bank()
    base_loss = best = val_loss(bank)
    best_state = (w_map.detach().clone(), u.detach().clone())
    best_epoch, stale, epoch, stopped = 0, 0, 0, "max epochs"
    rng = np.random.default_rng([cfg.seed, 7])
    bar = tqdm(total=cfg.max_epochs, desc="tuning the routing embedder", disable=not show_progress)
    try:
        for epoch in range(1, cfg.max_epochs + 1):
            order = tr[rng.permutation(len(tr))]
            for s in range(0, len(order), cfg.batch_size):
                batch = torch.from_numpy(order[s : s + cfg.batch_size])
                opt.zero_grad()
                # anchors are the epoch's bank (no gradient): the gradient flows through the queries
                loss = loss_of(embed(batch), batch, bank, tr_t, exclude_self=True, cols=train_cols)
                loss.backward()
                opt.step()
            bank = anchor_bank()
            current = val_loss(bank)
            if current < best - 1e-5:
                best, best_epoch, stale = current, epoch, 0
                best_state = (w_map.detach().clone(), u.detach().clone())
            else:
                stale += 1
            bar.update(1)
            bar.set_postfix(val=f"{current:.4f}", best=f"{best:.4f}")
            if stale >= cfg.patience:
                stopped = "patience"
                break
            if cfg.time_budget_s is not None and time.perf_counter() - t0 > cfg.time_budget_s:
                stopped = "time budget"
                break
    finally:
        bar.close()
    w_best, u_best = (t.numpy().astype(np.float64) for t in best_state)
    scale = np.ones(table.shape[0])
    scale[used] = np.exp(u_best)
    out = ((table.astype(np.float64) * scale[:, None]) @ w_best).astype(np.float32)
    report = TuningReport(n_train=len(tr), n_val=len(va), n_models=int(known.any(axis=0).sum()), n_outcomes=n_outcomes,
                          epochs=epoch, best_epoch=best_epoch, val_loss_base=base_loss, val_loss_best=best,
                          seconds=time.perf_counter() - t0, stopped=stopped,
                          val_models=[data.models[j] if j < len(data.models) else str(j) for j in held.tolist()])
    return out, report


def save_tuned(out: str | Path, table: np.ndarray, base: StaticEmbedder, report: TuningReport,
               config: TuningConfig, replace: bool = True) -> Path:
    """Write a tuned table as a model2vec-layout folder (the base's tokenizer), atomically."""
    tokenizer = json.loads((base.path / TOKENIZER_FILE).read_text(encoding="utf-8"))
    build = {"kind": TUNED_KIND, "name": tuned_name(table, base.truncation.label), "base": base.name,
             "truncation": asdict(base.truncation),
             "config": asdict(config), "report": asdict(report)}
    return write_static_model(Path(out), table, tokenizer, base.path.name, build, replace=replace)


def tuned_name(table: np.ndarray, truncation_label: str) -> str:
    """The name a tuned table records in histories: ``routing-`` and a hash of its rows (two tables
    trained on different histories never share a name), plus the truncation label."""
    digest = hashlib.sha256(np.ascontiguousarray(table.astype(np.float16)).tobytes()).hexdigest()[:12]
    return f"{ROUTING}-{digest}" + (f"+{truncation_label}" if truncation_label else "")


def load_tuned(path: str | Path) -> StaticEmbedder:
    """A saved routing-tuned embedder (read from local files only), under the name it records."""
    build = tuned_build(path)
    if build is None:
        raise EmbedderError(f"{str(path)!r} is not a routing-tuned embedder (no {BUILD_FILE} of kind {TUNED_KIND!r})")
    try:
        truncation = Truncation(**build.get("truncation") or {})
        name = str(build["name"])
    except (TypeError, KeyError) as exc:
        raise EmbedderError(f"routing-tuned embedder at {str(path)!r} has a bad build record: {exc}") from None
    return StaticEmbedder(path, name=name, truncation=truncation)


def tuned_build(path: str | Path) -> dict | None:
    """The build record of a tuned folder (``scope_embedder.json``), or None if it is not one."""
    f = Path(path) / BUILD_FILE
    try:
        build = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return build if isinstance(build, dict) and build.get("kind") == TUNED_KIND else None

