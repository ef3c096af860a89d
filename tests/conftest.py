"""Shared test fixtures: a small hand-made history where the right routing answer is known.

Questions belong to topics ("math", "code", "trivia"); the toy embedder maps a text to its topic's
direction plus a little text-dependent jitter, so nearest neighbours are the same-topic questions.
Models: "cheap" (good at trivia only), "mid" (good at trivia and code), "strong" (good at all).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from fixtures_postgres import pg_url, postgres_server  # noqa: E402,F401  (a real server, for the fleet tests)
from scope_shared import FunctionEmbedder, History, ModelCard, Outcome, Router  # noqa: E402

TOPICS = ("math", "code", "trivia")
DIM = 8


def toy_vector(text: str) -> np.ndarray:
    """Topic direction (first matching keyword) + deterministic jitter from the text's hash."""
    v = np.zeros(DIM, dtype=np.float32)
    low = text.lower()
    for i, t in enumerate(TOPICS):
        if t in low:
            v[i] = 1.0
            break
    else:
        v[3] = 1.0
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    v += 0.05 * np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def toy_embedder() -> FunctionEmbedder:
    return FunctionEmbedder(lambda texts: np.stack([toy_vector(t) for t in texts]), DIM, name="toy")


SKILL = {  # p(correct) by model and topic
    "cheap": {"math": 0.0, "code": 0.0, "trivia": 1.0},
    "mid": {"math": 0.0, "code": 1.0, "trivia": 1.0},
    "strong": {"math": 1.0, "code": 1.0, "trivia": 1.0},
}
TOKENS = {"cheap": 50.0, "mid": 100.0, "strong": 400.0}
CARDS = [
    ModelCard(name="cheap", input_price=0.1, output_price=0.2),
    ModelCard(name="mid", input_price=1.0, output_price=2.0),
    ModelCard(name="strong", input_price=10.0, output_price=30.0),
]


def toy_history(per_topic: int = 20) -> History:
    emb = toy_embedder()
    h = History(DIM, emb.name)
    for topic in TOPICS:
        for i in range(per_topic):
            text = f"{topic} question number {i}"
            outs = [
                Outcome(model=m, correct=SKILL[m][topic], output_tokens=TOKENS[m]) for m in SKILL
            ]
            h.add(text, emb.embed_one(text), outs, benchmark=topic)
    h.cards = {c.name: c for c in CARDS}
    return h


@pytest.fixture
def embedder() -> FunctionEmbedder:
    return toy_embedder()


@pytest.fixture
def history() -> History:
    return toy_history()


@pytest.fixture
def router(history: History, embedder: FunctionEmbedder) -> Router:
    return Router(CARDS, history, embedder=embedder)
