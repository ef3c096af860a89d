"""Closed-set routers of the literature, trained on the history part over query embeddings.

- `LogisticRouter`: one logistic regression per model (RouterBench's per-model classifiers);
- `MLPRouter`: one small MLP with a sigmoid head per model, trained jointly (RouterBench's MLP);
- `EmbeddingKNNRouter`: mean outcome of the k nearest history questions per model (RouterBench's kNN);
- `MatrixFactorizationRouter`: sigmoid(w . (W q * v_m) + b_m) over (query embedding, model id)
  (RouteLLM's / EmbedLLM's MF).

They know models only by id, so a new model needs retraining: in the unseen-model setting they are
retrained with the model's N anchor outcomes as its only rows (what that literature does).
Hyperparameters (C, k, epochs) are chosen on a validation part of the history (20%, seeded), then
the router is refit on the whole history part. Classifiers need 0/1 labels: scores are thresholded
at 0.5 for logistic regression; the torch models use the scores as soft targets.
"""

from __future__ import annotations

import numpy as np

from scope_shared.evaluation.routers import EvalSplit, ScoringRouter


def _val_split(n: int, seed: int, frac: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng([seed, 7]).permutation(n)
    n_val = max(1, int(round(n * frac)))
    return np.sort(idx[n_val:]), np.sort(idx[:n_val])


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    keep = np.isfinite(y)
    p = np.clip(p[keep], 1e-4, 1 - 1e-4)
    y = y[keep]
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))) if len(y) else 0.0


class LogisticRouter(ScoringRouter):
    """Per-model logistic regression on the query embedding; C chosen on validation log-loss."""

    name = "logreg"

    def __init__(self, cs: tuple[float, ...] = (0.1, 1.0)) -> None:
        self.cs = cs
        self.c = cs[0]
        self._fits: list = []
        self.chosen: dict[str, float] = {}

    @staticmethod
    def _fit_one(x: np.ndarray, y: np.ndarray, c: float):
        from sklearn.linear_model import LogisticRegression

        yb = (y >= 0.5).astype(int)
        if len(yb) == 0:
            return 0.5
        if yb.min() == yb.max():
            return float(yb[0])  # one class only: predict it (as a constant probability)
        return LogisticRegression(C=c, max_iter=200, tol=1e-3).fit(x, yb)

    @staticmethod
    def _proba(f, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), f) if isinstance(f, float) else f.predict_proba(x)[:, 1]

    def _fit_all(self, x: np.ndarray, s: np.ndarray, c: float) -> list:
        return [self._fit_one(x[np.isfinite(s[:, j])], s[np.isfinite(s[:, j]), j], c) for j in range(s.shape[1])]

    def fit(self, split: EvalSplit) -> None:
        tr, va = _val_split(len(split.hist_questions), split.seed)
        x, s = split.hist_emb, split.hist_scores
        losses = {}
        for c in self.cs:
            fits = self._fit_all(x[tr], s[tr], c)
            p = np.stack([self._proba(f, x[va]) for f in fits], 1)
            losses[c] = _log_loss(p, s[va])
        self.c = min(losses, key=losses.get)
        self.chosen = {"C": self.c}
        self._fits = self._fit_all(x, s, self.c)

    def predict(self, split: EvalSplit) -> np.ndarray:
        return np.stack([self._proba(f, split.test_emb) for f in self._fits], 1)


class EmbeddingKNNRouter(ScoringRouter):
    """Mean outcome of the k most similar history questions that have an outcome for the model."""

    name = "knn-embed"

    def __init__(self, ks: tuple[int, ...] = (5, 10, 20, 50, 100)) -> None:
        self.ks = ks
        self.k = ks[0]
        self.chosen: dict[str, float] = {}
        self._split: EvalSplit | None = None

    @staticmethod
    def _predict(q: np.ndarray, x: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
        sims = q @ x.T
        out = np.empty((len(q), s.shape[1]))
        for j in range(s.shape[1]):
            known = np.flatnonzero(np.isfinite(s[:, j]))
            if len(known) == 0:
                out[:, j] = 0.5
                continue
            kk = min(k, len(known))
            sj = sims[:, known]
            top = np.argpartition(-sj, kk - 1, axis=1)[:, :kk]
            out[:, j] = s[known[top], j].mean(1)
        return out

    def fit(self, split: EvalSplit) -> None:
        tr, va = _val_split(len(split.hist_questions), split.seed)
        x, s = split.hist_emb, split.hist_scores
        losses = {k: _log_loss(self._predict(x[va], x[tr], s[tr], k), s[va]) for k in self.ks}
        self.k = min(losses, key=losses.get)
        self.chosen = {"k": self.k}

    def predict(self, split: EvalSplit) -> np.ndarray:
        return self._predict(split.test_emb, split.hist_emb, split.hist_scores, self.k)


class _TorchRouter(ScoringRouter):
    """Shared trainer: masked BCE on (n_hist, n_models) soft targets; epochs by validation loss."""

    max_epochs = 40
    batch = 256
    lr = 1e-3
    weight_decay = 1e-4

    def __init__(self) -> None:
        self.chosen: dict[str, float] = {}
        self._net = None

    def _build(self, dim: int, n_models: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _train(self, x: np.ndarray, s: np.ndarray, epochs: int, seed: int, val: tuple | None = None):
        import torch

        torch.manual_seed(seed)
        net = self._build(x.shape[1], s.shape[1])
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        xt = torch.tensor(x, dtype=torch.float32)
        mask = torch.tensor(np.isfinite(s), dtype=torch.float32)
        yt = torch.tensor(np.nan_to_num(s), dtype=torch.float32)
        # unseen models have few rows: weight each model's rows so that every model counts equally
        per_model = mask.sum(0).clamp(min=1.0)
        w = mask * (mask.sum() / s.shape[1]) / per_model
        gen = torch.Generator().manual_seed(seed)
        losses = []
        for _ in range(epochs):
            net.train()
            for idx in torch.randperm(len(xt), generator=gen).split(self.batch):
                logits = net(xt[idx])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt[idx], weight=w[idx], reduction="sum")
                opt.zero_grad()
                (loss / w[idx].sum().clamp(min=1.0)).backward()
                opt.step()
            if val is not None:
                losses.append(_log_loss(self._apply(net, val[0]), val[1]))
        return net, losses

    @staticmethod
    def _apply(net, x: np.ndarray) -> np.ndarray:
        import torch

        net.eval()
        with torch.no_grad():
            return torch.sigmoid(net(torch.tensor(x, dtype=torch.float32))).numpy().astype(np.float64)

    def fit(self, split: EvalSplit) -> None:
        import torch

        torch.set_num_threads(1)
        tr, va = _val_split(len(split.hist_questions), split.seed)
        x, s = split.hist_emb, split.hist_scores
        _, losses = self._train(x[tr], s[tr], self.max_epochs, split.seed, val=(x[va], s[va]))
        epochs = int(np.argmin(losses)) + 1
        self.chosen = {"epochs": epochs}
        self._net, _ = self._train(x, s, epochs, split.seed)

    def predict(self, split: EvalSplit) -> np.ndarray:
        return self._apply(self._net, split.test_emb)


class MLPRouter(_TorchRouter):
    """One hidden layer (128, ReLU, dropout 0.1) and a sigmoid output per model."""

    name = "mlp"

    def _build(self, dim: int, n_models: int):
        import torch.nn as nn

        return nn.Sequential(nn.Linear(dim, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, n_models))


class MatrixFactorizationRouter(_TorchRouter):
    """RouteLLM-style MF: logit(q, m) = w . (W q * v_m) + b_m, with learned model vectors v_m."""

    name = "mf"
    lr = 3e-3

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.dim = dim

    def _build(self, dim: int, n_models: int):
        import torch
        import torch.nn as nn

        rank = self.dim

        class MF(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.proj = nn.Linear(dim, rank, bias=False)
                self.models = nn.Parameter(torch.randn(n_models, rank) * 0.1)
                self.head = nn.Linear(rank, 1, bias=False)
                self.bias = nn.Parameter(torch.zeros(n_models))

            def forward(self, q):
                z = self.proj(q)[:, None, :] * self.models[None, :, :]
                return self.head(z).squeeze(-1) + self.bias

        return MF()
