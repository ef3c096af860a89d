"""The small torch network behind `LearnedEstimator` (CPU-sized, a few thousand parameters).

Inputs per (query, model) pair: the query embedding (projected: a shared, model-agnostic notion of
what kind of question it is), the standardised hand features and the anchor set (a DeepSets encoder
with similarity-driven attention pooling). Outputs: the correctness logit and a correction to the
kNN log-length. No model identity enters anywhere. Inputs that were constant in training are pinned
to their training value, so evidence the network never saw (say, output lengths) cannot move it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

MIN_STD = 1e-3  # a training input with less spread than this is treated as constant (pinned)
CLAMP = 10.0  # standardised hand features are clipped to +-CLAMP: a far-off input cannot swamp the rest


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads (restored after).

    This network is tiny: one thread is fastest, and on a busy machine several threads spin-wait
    on each other (measured 60x slower with 2 threads on 2 loaded cores).
    """
    old = torch.get_num_threads()
    if n > 0 and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0 and n != old:
            torch.set_num_threads(old)


class AnchorSetEncoder(nn.Module):
    """Encode a variable-size set of anchors (masked) into one vector."""

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.attn = nn.Linear(n_in, 1)

    def forward(self, aset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.phi(aset)  # (B, k, H)
        a = self.attn(aset).squeeze(-1).masked_fill(~mask, -1e9)
        w = torch.softmax(a, dim=-1) * mask.any(-1, keepdim=True)
        return (w.unsqueeze(-1) * h).sum(1)


class PairNet(nn.Module):
    """Correctness logit and log-length correction for a batch of (query, model) pairs."""

    def __init__(self, dim: int, n_hand: int, n_anchor: int, hidden: int = 64, q_dim: int = 16, dropout: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("hand_mean", torch.zeros(n_hand))
        self.register_buffer("hand_std", torch.ones(n_hand))
        # inputs that never varied in training (e.g. length features of a history without lengths)
        # carry no learned meaning: they are pinned to their training value at serving time
        self.register_buffer("hand_live", torch.ones(n_hand))
        self.register_buffer("aset_live", torch.ones(n_anchor))
        self.register_buffer("aset_fill", torch.zeros(n_anchor))
        # q_dim = 0 drops the query embedding (it lets the net memorise training questions' difficulty)
        self.q_proj = nn.Sequential(nn.Linear(dim, q_dim), nn.GELU()) if q_dim > 0 else None
        self.anchors = AnchorSetEncoder(n_anchor, hidden // 2)
        self.trunk = nn.Sequential(
            nn.Linear(n_hand + q_dim + hidden // 2, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )
        self.head_p = nn.Linear(hidden, 1)
        self.head_len = nn.Linear(hidden, 1)
        self.skip = nn.Linear(n_hand, 1)  # a linear path over the hand features: a strong start

    @torch.no_grad()
    def fit_input_stats(self, hand: np.ndarray, aset: np.ndarray, amask: np.ndarray) -> None:
        """Set the standardisation and the live/pinned masks from training inputs.

        ``hand`` (n, n_hand) and ``aset`` (n, k, n_anchor) with ``amask`` (n, k): a column whose
        spread is below ``MIN_STD`` is pinned (its standardised value 0, or its training value).
        """
        std = hand.std(0)
        self.hand_mean.copy_(torch.from_numpy(hand.mean(0)))
        self.hand_std.copy_(torch.from_numpy(np.maximum(std, MIN_STD)))
        self.hand_live.copy_(torch.from_numpy((std >= MIN_STD).astype(np.float32)))
        rows = aset[amask]  # (n_anchors, n_anchor): only real anchors count
        if len(rows):
            self.aset_live.copy_(torch.from_numpy((rows.std(0) >= MIN_STD).astype(np.float32)))
            self.aset_fill.copy_(torch.from_numpy(rows.mean(0).astype(np.float32)))

    def forward(
        self, q: torch.Tensor, hand: torch.Tensor, aset: torch.Tensor, amask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hz = ((hand - self.hand_mean) / self.hand_std * self.hand_live).clamp(-CLAMP, CLAMP)
        aset = aset * self.aset_live + self.aset_fill * (1 - self.aset_live)
        parts = [hz, self.anchors(aset, amask)]
        if self.q_proj is not None:
            parts.append(self.q_proj(q))
        z = torch.cat(parts, dim=-1)
        h = self.trunk(z)
        return (self.head_p(h) + self.skip(hz)).squeeze(-1), self.head_len(h).squeeze(-1)
