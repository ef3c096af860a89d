"""Training of `LearnedEstimator`: leave-one-out features over the history, early stopping.

Kept apart from the estimator so that inference code stays small. Where the history has output
lengths, a ``length_dropout`` share of the training pairs has its length evidence hidden, so one
network serves models onboarded with and without output-token counts. Everything is seeded (numpy
and torch generators built from ``config.seed``), so a run is reproducible on the same machine.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from scope_shared.progress import show_bars
from scope_shared.cards import Outcome
from scope_shared.estimators.features import N_ANCHOR, N_HAND, hide_lengths, pair_features, summarize_model
from scope_shared.estimators.learned_net import PairNet
from scope_shared.history import History
from scope_shared.metrics import auroc

if TYPE_CHECKING:
    from scope_shared.estimators.learned import LearnedConfig

_CHUNK = 512


@dataclass
class TrainReport:
    """Per-epoch losses, the epoch kept (early stopping) and its validation figures."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    val_auroc: float = float("nan")
    n_train_pairs: int = 0
    n_val_pairs: int = 0
    has_length: bool = False
    val_question_ids: list[int] = field(default_factory=list)


@dataclass
class TrainingSet:
    """Features and labels of every (history question, model view) pair; ``val`` marks held-out questions."""

    q: np.ndarray  # (n, d)
    hand: np.ndarray  # (n, P, N_HAND)
    aset: np.ndarray  # (n, P, k, N_ANCHOR)
    mask: np.ndarray  # (n, P, k)
    base: np.ndarray  # (n, P) kNN log-length (NaN unknown)
    y: np.ndarray  # (n, P) score, NaN where the model has no outcome
    ylen: np.ndarray  # (n, P) log(1 + output tokens), NaN unknown
    val: np.ndarray  # (n,) bool
    has_length: bool


def view_history(
    history: History, models: Sequence[str], views: Sequence[int | None], rng: np.random.Generator
) -> tuple[History, list[str], list[int]]:
    """A copy of the history where each model appears once per view (all, or a random subsample).

    Returns the new history, its pseudo-models (named ``view<i>-model<j>``) and, per pseudo-model,
    the index of its real model in ``models``.
    """
    if list(views) == [None]:
        return history, list(models), list(range(len(models)))
    out = History(history.dim, history.embedder_name)
    n = len(history)
    out.add_questions([history.text(i) for i in range(n)], np.asarray(history.embeddings), history.benchmarks)
    per_q: dict[int, list[Outcome]] = defaultdict(list)
    base: list[int] = []
    names: list[str] = []
    for j, m in enumerate(models):
        arr = history.model_arrays(m)
        for vi, v in enumerate(views):
            if v is not None and v >= len(arr.ids):
                continue
            take = np.arange(len(arr.ids)) if v is None else np.sort(rng.choice(len(arr.ids), v, replace=False))
            name = f"view{vi}-model{j}"
            for p in take.tolist():
                tok = float(arr.tokens[p]) if np.isfinite(arr.tokens[p]) else None
                per_q[int(arr.ids[p])].append(Outcome(model=name, correct=float(arr.scores[p]), output_tokens=tok))
            base.append(j)
            names.append(name)
    for qid in sorted(per_q):
        out.add_outcomes(qid, per_q[qid])
    return out, names, base


def build_training_set(
    history: History,
    models: Sequence[str],
    cfg: LearnedConfig,
    summaries: Callable[[History, Sequence[str]], list] | None = None,
    show_progress: bool = True,
) -> TrainingSet:
    """Leave-one-out features for every history question against every model view."""
    rng = np.random.default_rng(cfg.seed)
    n = len(history)
    aug, pseudo, base_of = view_history(history, models, cfg.views, rng)
    sums = [summarize_model(aug, m) for m in pseudo]
    y = np.full((n, len(models)), np.nan, np.float32)
    ylen = np.full((n, len(models)), np.nan, np.float32)
    for j, m in enumerate(models):
        arr = history.model_arrays(m)
        y[arr.ids, j] = arr.scores
        ylen[arr.ids, j] = np.log1p(arr.tokens)
    emb = np.asarray(history.embeddings, np.float32)
    k = cfg.k
    hand = np.zeros((n, len(pseudo), N_HAND), np.float32)
    sk = min(cfg.set_k, k)
    aset = np.zeros((n, len(pseudo), sk, N_ANCHOR), np.float32)
    mask = np.zeros((n, len(pseudo), sk), bool)
    base = np.zeros((n, len(pseudo)), np.float32)
    chunks = range(0, n, _CHUNK)
    for s in tqdm(chunks, desc="training features", disable=not show_bars(show_progress)):
        ids = np.arange(s, min(s + _CHUNK, n))
        a = aug.anchors(emb[ids], pseudo, k, exclude_ids=ids)
        h, st, b = pair_features(emb[ids], a, sums, exclude_ids=ids)
        hand[ids], aset[ids], mask[ids], base[ids] = h, st[:, :, :sk], a.mask[:, :, :sk], b
    val = np.zeros(n, bool)
    val[rng.permutation(n)[: int(round(n * cfg.val_fraction))]] = True
    idx = np.array(base_of)
    has_length = bool(np.isfinite(ylen).any())
    if has_length and cfg.length_dropout > 0:
        # these pairs look exactly as if the model came without output lengths, so the network
        # learns to serve both kinds of model (their length loss is skipped: base is NaN)
        hide_lengths(hand, aset, base, rng.random(base.shape) < cfg.length_dropout)
    return TrainingSet(emb, hand, aset, mask, base, y[:, idx], ylen[:, idx], val, has_length)


def _losses(net: PairNet, data: TrainingSet, qi: np.ndarray, pj: np.ndarray, length_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    logit, dl = net(
        torch.from_numpy(data.q[qi]),
        torch.from_numpy(data.hand[qi, pj]),
        torch.from_numpy(data.aset[qi, pj]),
        torch.from_numpy(data.mask[qi, pj]),
    )
    y = torch.from_numpy(data.y[qi, pj])
    loss = nn.functional.binary_cross_entropy_with_logits(logit, y)
    if data.has_length:
        tgt = data.ylen[qi, pj]
        b = data.base[qi, pj]
        ok = torch.from_numpy(np.isfinite(tgt) & np.isfinite(b))
        if bool(ok.any()):
            pred = torch.from_numpy(np.nan_to_num(b)) + dl
            hub = nn.functional.huber_loss(pred[ok], torch.from_numpy(np.nan_to_num(tgt))[ok], delta=0.5)
            loss = loss + length_weight * hub
    return loss, logit


def train_net(data: TrainingSet, dim: int, cfg: LearnedConfig, show_progress: bool = True) -> tuple[PairNet, TrainReport]:
    """Fit a `PairNet` with AdamW, early stopping on the validation questions' loss."""
    torch.manual_seed(cfg.seed)
    gen = np.random.default_rng(cfg.seed + 1)
    qi, pj = np.nonzero(np.isfinite(data.y))
    is_val = data.val[qi]
    tq, tp, vq, vp = qi[~is_val], pj[~is_val], qi[is_val], pj[is_val]
    if len(tq) == 0 or len(vq) == 0:
        from scope_shared.errors import EstimatorError

        raise EstimatorError("too few labelled questions to hold some out for validation")
    net = PairNet(dim, N_HAND, N_ANCHOR, cfg.hidden, cfg.q_dim, cfg.dropout)
    net.fit_input_stats(data.hand[tq, tp], data.aset[tq, tp], data.mask[tq, tp])
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    report = TrainReport(n_train_pairs=len(tq), n_val_pairs=len(vq), has_length=data.has_length)
    report.val_question_ids = np.flatnonzero(data.val).tolist()
    best_state, best_loss, bad = None, np.inf, 0
    bar = tqdm(range(cfg.epochs), desc="training", disable=not show_bars(show_progress))
    for epoch in bar:
        net.train()
        order = gen.permutation(len(tq))
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            b = order[s : s + cfg.batch_size]
            loss, _ = _losses(net, data, tq[b], tp[b], cfg.length_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        report.train_loss.append(total / len(tq))
        net.eval()
        with torch.no_grad():
            vloss, logits = 0.0, []
            for s in range(0, len(vq), 4096):
                loss, lg = _losses(net, data, vq[s : s + 4096], vp[s : s + 4096], cfg.length_weight)
                vloss += float(loss) * len(lg)
                logits.append(lg.numpy())
        report.val_loss.append(vloss / len(vq))
        bar.set_postfix(train=f"{report.train_loss[-1]:.4f}", val=f"{report.val_loss[-1]:.4f}")
        if report.val_loss[-1] < best_loss - 1e-5:
            best_loss, bad, best_state = report.val_loss[-1], 0, copy.deepcopy(net.state_dict())
            report.best_epoch = epoch
            val_auroc = auroc(np.concatenate(logits), data.y[vq, vp])
            report.val_auroc = float("nan") if val_auroc is None else val_auroc
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    return net, report
