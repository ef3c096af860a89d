"""A learned, model-agnostic estimator: a small torch network over a model's anchor evidence.

It never sees a model's name: each (query, model) pair is described by the query embedding, the
model's k anchors and history-wide statistics of the model (`scope_shared.estimators.features`). So
one trained network serves models added after training (`Router.add_model`), from their outcomes.

Training (`LearnedEstimator.fit`) uses the history only: every history question becomes a training
query with leave-one-out features (its own outcome is hidden from its anchors and statistics); a
share of questions is held out for early stopping. To serve models with few outcomes, each model
also appears in *views* whose history is subsampled to e.g. 200 or 50 outcomes, so the network
learns how much to trust thin evidence. Where lengths exist, a share of the training pairs has its
length evidence hidden (``length_dropout``), and inputs that never varied in training are pinned at
serving time, so models onboarded with or without output-token counts are served alike (whatever
the training history had). Loss: binary cross-entropy on correctness (scores in [0, 1] are soft
labels) plus a Huber loss on log(1 + output tokens) where lengths are known.

Persistence: ``model.safetensors`` (weights) + ``config.json`` (shapes, settings, the weights'
sha256); loading parses JSON and tensors only, never executes code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scope_shared.atomic import atomic_write, atomic_write_json
from scope_shared.errors import EstimatorError
from scope_shared.estimators.base import Estimator, RawEstimates
from scope_shared.estimators.features import (
    HAND_NAMES,
    N_ANCHOR,
    N_HAND,
    ModelSummary,
    pair_features,
    summarize_model,
)
from scope_shared.estimators.learned_net import PairNet, torch_threads
from scope_shared.estimators.learned_train import TrainReport, build_training_set, train_net
from scope_shared.history import Anchors, History

FORMAT = "scope-learned-estimator"
VERSION = 2  # 2: length features with "known" indicators, pinned inputs (models with or without lengths)
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass
class LearnedConfig:
    """Shape and training settings of a `LearnedEstimator` (saved as JSON)."""

    k: int = 40
    hidden: int = 64
    q_dim: int = 0
    dropout: float = 0.1
    views: tuple[int | None, ...] = (None, 50)
    set_k: int = 16  # anchors the set encoder reads (the hand features use all k)
    val_fraction: float = 0.15
    epochs: int = 20
    patience: int = 3
    batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-4
    length_weight: float = 0.5
    length_dropout: float = 0.3  # share of training pairs whose length evidence is hidden
    seed: int = 0
    threads: int = 1  # torch threads for training and inference (0: leave torch's setting)


class LearnedEstimator(Estimator):
    """Predicts correctness and output length from anchors with a trained network (see module doc)."""

    name = "learned"

    def __init__(self, config: LearnedConfig | None = None) -> None:
        self.config = config or LearnedConfig()
        if self.config.k <= 0:
            raise EstimatorError("LearnedEstimator needs k > 0")
        self.k = self.config.k
        self.net: PairNet | None = None
        self.dim: int | None = None
        self.has_length = False
        self.report: TrainReport | None = None
        self._summaries: dict[tuple[int, str, int, int], ModelSummary] = {}

    def __repr__(self) -> str:
        state = "trained" if self.net is not None else "untrained"
        return f"LearnedEstimator(k={self.k}, {state})"

    # ---------------------------------------------------------------- features
    def summaries(self, history: History, models: Sequence[str]) -> list[ModelSummary]:
        """Model summaries, cached while the model's outcomes and the history size are unchanged."""
        out = []
        for m in models:
            key = (id(history), m, history.n_outcomes(m), len(history))
            if key not in self._summaries:
                if len(self._summaries) > 256:
                    self._summaries.clear()
                self._summaries[key] = summarize_model(history, m)
            out.append(self._summaries[key])
        return out

    def _require(self, history: History) -> PairNet:
        if self.net is None:
            raise EstimatorError("LearnedEstimator is not trained: call fit(history) or load(path)")
        if self.dim != history.dim:
            raise EstimatorError(f"estimator trained on {self.dim}-d embeddings, history has {history.dim}-d")
        return self.net

    def _forward(self, q: np.ndarray, hand: np.ndarray, aset: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network over (n_q, n_m) pairs in batches; returns (p, log-length correction)."""
        net = self.net
        assert net is not None
        n_q, n_m = hand.shape[:2]
        net.eval()
        ps, ls = [], []
        with torch.no_grad(), torch_threads(self.config.threads):
            for s in range(0, n_q, 1024):
                e = slice(s, min(s + 1024, n_q))
                b = hand[e].shape[0]
                qq = torch.from_numpy(np.repeat(q[e], n_m, axis=0).astype(np.float32))
                logit, dl = net(
                    qq,
                    torch.from_numpy(hand[e].reshape(b * n_m, -1)),
                    torch.from_numpy(aset[e].reshape(b * n_m, aset.shape[2], -1)),
                    torch.from_numpy(mask[e].reshape(b * n_m, -1)),
                )
                ps.append(torch.sigmoid(logit).numpy().reshape(b, n_m))
                ls.append(dl.numpy().reshape(b, n_m))
        if not ps:
            return np.zeros((0, n_m)), np.zeros((0, n_m))
        return np.concatenate(ps), np.concatenate(ls)

    def _estimates(self, q: np.ndarray, anchors: Anchors, history: History, exclude: np.ndarray | None) -> RawEstimates:
        self._require(history)
        hand, aset, base = pair_features(q, anchors, self.summaries(history, anchors.models), exclude)
        sk = self.config.set_k
        p, dl = self._forward(np.asarray(q, np.float32), hand, aset[:, :, :sk], anchors.mask[:, :, :sk])
        logtok = base + dl if self.has_length else base
        return RawEstimates(
            p_correct=p.astype(np.float64),
            output_tokens=np.expm1(logtok.astype(np.float64)),
            n_anchors=anchors.mask.sum(-1),
        )

    def predict(self, queries: Sequence[str], query_embs: np.ndarray, anchors: Anchors, history: History) -> RawEstimates:
        return self._estimates(np.atleast_2d(query_embs), anchors, history, None)

    def predict_history(self, history: History, question_ids: np.ndarray, models: Sequence[str]) -> RawEstimates:
        """Leave-one-out predictions for history questions (each one's own outcomes hidden)."""
        ids = np.asarray(question_ids, dtype=np.int64)
        q = history.embeddings[ids]
        return self._estimates(q, history.anchors(q, models, self.k, exclude_ids=ids), history, ids)

    # ---------------------------------------------------------------- training
    def fit(self, history: History, models: Sequence[str] | None = None, show_progress: bool = True) -> TrainReport:
        """Train on ``history`` (see the module doc); returns the `TrainReport` (also ``self.report``)."""
        cfg = self.config
        models = list(models or history.models)
        if len(history) < 10 or not models:
            raise EstimatorError("training needs a history with at least 10 questions and one model")
        data = build_training_set(history, models, cfg, self.summaries, show_progress)
        self.dim = history.dim
        self.has_length = data.has_length
        with torch_threads(cfg.threads):
            self.net, self.report = train_net(data, history.dim, cfg, show_progress)
        return self.report

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` into directory ``path``."""
        from safetensors.torch import save as st_save

        if self.net is None:
            raise EstimatorError("nothing to save: the estimator is not trained")
        folder = Path(path)
        data = st_save({k: v.contiguous() for k, v in self.net.state_dict().items()})
        atomic_write(folder / WEIGHTS, lambda f: f.write(data))
        cfg = asdict(self.config)
        cfg["views"] = list(cfg["views"])
        report = asdict(self.report) if self.report else None
        if report:
            report.pop("val_question_ids", None)
        atomic_write_json(
            folder / CONFIG,
            {
                "format": FORMAT,
                "version": VERSION,
                "dim": self.dim,
                "has_length": self.has_length,
                "hand_features": list(HAND_NAMES),
                "config": cfg,
                "weights_sha256": hashlib.sha256(data).hexdigest(),
                "report": _json_safe(report),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> "LearnedEstimator":
        """Load a directory written by `save` (JSON + safetensors only; nothing is executed)."""
        from safetensors.torch import load as st_load

        folder = Path(path)
        try:
            meta = json.loads((folder / CONFIG).read_text())
            data = (folder / WEIGHTS).read_bytes()
        except (OSError, ValueError) as exc:
            raise EstimatorError(f"cannot read a learned estimator from {folder}: {exc}") from None
        if meta.get("format") != FORMAT:
            raise EstimatorError(f"{folder} is not a {FORMAT} directory")
        if meta.get("version") != VERSION:
            raise EstimatorError(
                f"{folder} holds a {FORMAT} of format version {str(meta.get('version'))[:20]}; this library reads "
                f"version {VERSION} (its length features changed, so models with and without output lengths "
                "are served alike): retrain it (scope train)"
            )
        if meta.get("hand_features") != list(HAND_NAMES):
            raise EstimatorError(f"{folder} was trained with other features; retrain it")
        if hashlib.sha256(data).hexdigest() != meta.get("weights_sha256"):
            raise EstimatorError(f"{folder / WEIGHTS} does not match its config (checksum)")
        fields = dict(meta["config"])
        fields["views"] = tuple(fields.get("views", (None,)))
        try:
            est = cls(LearnedConfig(**fields))
            net = PairNet(int(meta["dim"]), N_HAND, N_ANCHOR, est.config.hidden, est.config.q_dim, est.config.dropout)
            net.load_state_dict(st_load(data), strict=True)
        except (TypeError, RuntimeError, KeyError) as exc:
            raise EstimatorError(f"corrupt learned estimator in {folder}: {exc}") from None
        est.net, est.dim, est.has_length = net, int(meta["dim"]), bool(meta["has_length"])
        return est


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


__all__ = ["LearnedConfig", "LearnedEstimator", "TrainReport", "train_calibrated"]


def train_calibrated(
    history: History,
    models: Sequence[str] | None = None,
    seed: int = 0,
    method: str = "platt",
    config: LearnedConfig | None = None,
    show_progress: bool = False,
) -> Estimator:
    """Train a `LearnedEstimator` on ``history`` (``models`` only) and calibrate it on its validation part.

    The calibrator is fitted on leave-one-out predictions for the validation questions (held out of
    training, used only for early stopping); ``method="none"`` returns the raw estimator.
    """
    from scope_shared.estimators.calibration import calibrate

    est = LearnedEstimator(replace(config or LearnedConfig(), seed=seed))
    report = est.fit(history, models=models, show_progress=show_progress)
    if method == "none":
        return est
    return calibrate(est, history, np.array(report.val_question_ids), method, list(models or history.models))
