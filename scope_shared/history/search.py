"""Anchor search: for each query and model, the k most similar questions that model answered.

Kept apart from `History` (which owns the data) because it is the hot path of every routing
decision; see `anchors` for the strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from scope_shared.errors import HistoryDataError
from scope_shared.history.anchors import Anchors
from scope_shared.history.columns import ModelArrays
from scope_shared.history.validation import check_k, query_array

if TYPE_CHECKING:
    from scope_shared.history.history import History

#: a shared neighbour pool larger than this is not searched; sparser models get an exact search
MAX_POOL = 2048


def anchors(
    h: History, query_embs: np.ndarray, models: Sequence[str], k: int, exclude_ids: np.ndarray | None = None
) -> Anchors:
    """For each query and model, the k most similar questions that model has outcomes for.

    One shared index search serves all models: its pool of neighbours is made large enough
    that each model's outcomes should cover at least 2k of them (up to `MAX_POOL`); a model
    whose outcomes are sparser (e.g. 1% of the questions), or a query whose pool holds too few
    of a model's questions, gets an exact search over that model's own questions.
    ``exclude_ids`` (n_queries,) drops one question per query (leave-one-out evaluation).
    """
    k = check_k(k)
    if isinstance(models, str) or not isinstance(models, Sequence):
        raise HistoryDataError("models must be a sequence of model names")
    q = query_array(query_embs, h.dim)
    n_q, n_m = len(q), len(models)
    ids = np.full((n_q, n_m, k), -1, dtype=np.int64)
    sims = np.zeros((n_q, n_m, k), dtype=np.float32)
    scores = np.full((n_q, n_m, k), np.nan, dtype=np.float32)
    tokens = np.full((n_q, n_m, k), np.nan, dtype=np.float32)
    mask = np.zeros((n_q, n_m, k), dtype=bool)
    if len(h) == 0 or n_q == 0:
        return Anchors(tuple(models), ids, sims, scores, tokens, mask)
    with h.lock:
        n = len(h)
        arrays = [h.model_arrays(m) for m in models]
        slot_of = {m: i for i, m in enumerate(h.models)}
        excl = None if exclude_ids is None else _exclusions(exclude_ids, n_q)
        extra = 0 if excl is None else 1
        sizes = np.array([len(a.ids) for a in arrays], dtype=np.int64)
        need = np.where(sizes > 0, np.ceil(2 * k * n / np.maximum(sizes, 1)), np.inf)
        base = max(4 * k, 64)
        fits = need <= MAX_POOL
        pool = int(min(n, max(base, need[fits].max() if fits.any() else base) + extra))
        shared = [j for j in range(n_m) if sizes[j] > 0 and sizes[j] * pool >= 2 * k * n]
        short = np.ones((n_q, n_m), dtype=bool)
        short[:, shared] = False
        if shared:
            g_sims, g_ids = h.index.search(q, pool)
            if excl is not None:
                g_ids = np.where(g_ids == excl[:, None], -1, g_ids)
            _fill_from_pool(h, g_sims, g_ids, arrays, shared, [slot_of[models[j]] for j in shared], k, extra, ids, sims, scores, tokens, mask, short)
        for j in np.flatnonzero(short.any(axis=0) & (sizes > 0)).tolist():
            rows = np.flatnonzero(short[:, j])
            e_sims, e_ids, e_pos, e_take = _exact_model_search(h,
                q[rows], arrays[j], k, None if excl is None else excl[rows]
            )
            a = arrays[j]
            mask[rows, j] = e_take
            ids[rows, j] = np.where(e_take, e_ids, -1)
            sims[rows, j] = np.where(e_take, e_sims, 0.0)
            scores[rows, j] = np.where(e_take, a.scores[e_pos], np.nan)
            tokens[rows, j] = np.where(e_take, a.tokens[e_pos], np.nan)
    return Anchors(tuple(models), ids, sims, scores, tokens, mask)

def _exclusions(exclude_ids: np.ndarray, n_q: int) -> np.ndarray:
    try:
        return np.asarray(exclude_ids, dtype=np.int64).reshape(n_q)
    except (TypeError, ValueError) as exc:
        raise HistoryDataError(f"exclude_ids must be one question id per query ({exc})") from None


def _fill_from_pool(
    h: History,
    g_sims: np.ndarray,
    g_ids: np.ndarray,
    arrays: list[ModelArrays],
    shared: list[int],
    shared_slots: list[int],
    k: int,
    extra: int,
    ids: np.ndarray,
    sims: np.ndarray,
    scores: np.ndarray,
    tokens: np.ndarray,
    mask: np.ndarray,
    short: np.ndarray,
) -> None:
    """Anchors of the ``shared`` models from one neighbour pool, vectorised across models;
    marks in ``short`` the (query, model) pairs whose pool held fewer than k of its questions."""
    pool = g_ids.shape[1]
    valid = g_ids >= 0
    slots = np.array(shared_slots, dtype=np.int64)
    member = h.answered(np.where(valid, g_ids, 0), slots)  # (n_q, pool, J)
    member &= valid[:, :, None]
    member = member.transpose(0, 2, 1)  # (n_q, J, pool)
    kk = min(k, pool)
    order = np.argsort(~member, axis=-1, kind="stable")[..., :kk]
    take = np.take_along_axis(member, order, axis=-1)
    sel_ids = np.take_along_axis(np.broadcast_to(g_ids[:, None, :], member.shape), order, axis=-1)
    sel_sims = np.take_along_axis(np.broadcast_to(g_sims[:, None, :], member.shape), order, axis=-1)
    got = take.sum(-1)
    sh = np.asarray(shared)
    mask[:, sh, :kk] = take
    ids[:, sh, :kk] = np.where(take, sel_ids, -1)
    sims[:, sh, :kk] = np.where(take, sel_sims, 0.0)
    sid = np.where(take, sel_ids, 0).astype(np.int32)
    sc = np.empty(take.shape, np.float32)
    tk = np.empty(take.shape, np.float32)
    for jj, j in enumerate(shared):
        a = arrays[j]
        p = np.searchsorted(a.ids, sid[:, jj])
        np.minimum(p, len(a.ids) - 1, out=p)
        sc[:, jj] = a.scores[p]
        tk[:, jj] = a.tokens[p]
    scores[:, sh, :kk] = np.where(take, sc, np.nan)
    tokens[:, sh, :kk] = np.where(take, tk, np.nan)
    sizes = np.array([len(arrays[j].ids) for j in shared])
    short[:, sh] = got < np.minimum(k, sizes - extra)[None, :]

def _exact_model_search(
    h: History, q: np.ndarray, arrays: ModelArrays, k: int, exclude: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Brute force over one model's questions: (sims, ids, positions, valid), each (n, k)."""
    n = len(q)
    m = len(arrays.ids)
    out = (
        np.zeros((n, k), np.float32),
        np.full((n, k), -1, np.int64),
        np.zeros((n, k), np.int64),
        np.zeros((n, k), bool),
    )
    if m == 0:
        return out
    s = q @ h.index.vectors(arrays.ids).T  # (n, m)
    if exclude is not None:
        s = np.where(arrays.ids[None, :] == exclude[:, None], -np.inf, s)
    kk = min(k, m)
    top = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < m else np.tile(np.arange(m), (n, 1))
    top_s = np.take_along_axis(s, top, axis=1)
    order = np.argsort(-top_s, axis=1, kind="stable")
    pos = np.take_along_axis(top, order, axis=1)
    sv = np.take_along_axis(top_s, order, axis=1)
    valid = np.isfinite(sv)
    out[0][:, :kk] = np.where(valid, sv, 0.0)
    out[1][:, :kk] = np.where(valid, arrays.ids[pos], -1)
    out[2][:, :kk] = pos
    out[3][:, :kk] = valid
    return out

