"""Routers over any set of models: drop or keep models in a history (same ids, no re-embedding), and
add a model's outcomes by text, embedding only the texts the history does not hold."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CARDS, toy_embedder, toy_vector

from scope_shared import FunctionEmbedder, ModelCard, Router, ScopeError
from scope_shared.errors import UnknownModelError
from scope_shared.history.subset import add_model_outcomes


class CountingEmbedder(FunctionEmbedder):
    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(self._fn, 8, name="toy")

    def _fn(self, texts):
        self.seen.extend(texts)
        return np.stack([toy_vector(t) for t in texts])


def test_select_and_drop_models_keep_questions_and_vectors(history):
    only = history.select_models(["cheap", "strong"])
    assert only.models == ["cheap", "strong"] and sorted(only.cards) == ["cheap", "strong"]
    assert len(only) == len(history) and [only.text(i) for i in range(len(only))] == [history.text(i) for i in range(len(history))]
    assert np.array_equal(only.embeddings, history.embeddings)
    assert only.n_outcomes("cheap") == history.n_outcomes("cheap") and only.n_records == 2 * len(history)
    assert only.outcome_log.model_names == ["cheap", "strong"]  # no trace of the dropped model
    with pytest.raises(UnknownModelError):
        only.n_outcomes("mid")
    assert history.n_outcomes("mid") == len(history)  # the original is untouched
    dropped = history.drop_models(["mid"])
    assert dropped.models == only.models and dropped.n_records == only.n_records
    with pytest.raises(UnknownModelError, match="nope"):
        history.drop_models(["nope"])
    router = Router([c for c in CARDS if c.name != "mid"], dropped, embedder=toy_embedder())
    assert router.route("math question number 99", knob={"min_accuracy": 0.9}).model == "strong"


def test_add_model_outcomes_embeds_only_new_texts(history):
    emb = CountingEmbedder()
    outcomes = {"math question number 1": 1.0, "trivia question number 2": 0.0, "math about a brand new thing": 1.0}
    ids = add_model_outcomes(history, ModelCard(name="newbie", input_price=0.1, output_price=0.1), outcomes, emb)
    assert emb.seen == ["math about a brand new thing"]  # the two known texts were not re-embedded
    assert ids[:2] == [history.question_id("math question number 1"), history.question_id("trivia question number 2")]
    assert history.n_outcomes("newbie") == 3 and "newbie" in history.cards
    with pytest.raises(ScopeError, match="needs an embedder"):
        add_model_outcomes(history, ModelCard(name="other", input_price=0, output_price=0), {"never seen before": 1.0})
    # a router over only the new model, built without one over the others
    router = Router([history.cards["newbie"]], history, embedder=emb)
    assert router.models == ["newbie"] and router.route("math question number 5").model == "newbie"


def test_router_add_model_embeds_only_new_texts(history):
    emb = CountingEmbedder()
    router = Router(CARDS, history, embedder=emb)
    emb.seen.clear()
    router.add_model(ModelCard(name="mathwiz", input_price=0.1, output_price=0.2),
                     {"math question number 3": 1.0, "math question number 4": 1.0, "a new math text": 1.0})
    assert emb.seen == ["a new math text"]
