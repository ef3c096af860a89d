"""Feedback for one routed call replaces that call's earlier feedback (in memory, in the log, after a save)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CARDS, toy_embedder, toy_history
from fixtures_langchain import make_candidates

from langchain_scope import SCOPERouter
from scope_shared import History, Router
from scope_shared.budget.settings import Settings, settings_for_call
from scope_shared.calls import RoutedCall, Usage


def _answered(router: Router, query: str) -> str:
    # min_accuracy 0.8: the cheapest model that knows trivia answers (the toy world's "cheap")
    call = RoutedCall.plan(router, query, settings_for_call(Settings.read(min_accuracy=0.8)))
    model = call.decision.model
    call.succeeded(model, Usage(10, 20))
    return call.record.call_id


def _score(history: History, text: str, model: str) -> tuple[float, int]:
    qid = history.question_id(text)
    arrays = history.model_arrays(model)
    at = int(np.searchsorted(arrays.ids, qid))
    rows = [r for r in history.records if r.question_id == qid and r.outcome.model == model]
    return float(arrays.scores[at]), len(rows)


def test_feedback_twice_for_one_call_counts_once_with_the_last_value(router):
    q = "trivia: a brand new question"
    call_id = _answered(router, q)
    n = router.history.n_records
    router.record_feedback(call_id, 1.0)
    router.record_feedback(call_id, 0.0)
    router.record_feedback(call_id, 0.25)
    assert router.history.n_records == n + 1
    assert _score(router.history, q, "cheap") == (0.25, 1)
    other = _answered(router, q)  # a second call on the same question is a second outcome
    router.record_feedback(other, 1.0)
    assert _score(router.history, q, "cheap") == (pytest.approx(0.625), 2)


def test_the_log_replays_a_replacement_as_a_replacement(tmp_path):
    log = tmp_path / "feedback.log"
    router = Router(CARDS, toy_history(), embedder=toy_embedder(), feedback_log=log)
    q = "trivia: logged question"
    call_id = _answered(router, q)
    router.record_feedback(call_id, 1.0)
    router.record_feedback(call_id, 0.0)
    router.history.detach_log()
    fresh = Router(CARDS, toy_history(), embedder=toy_embedder(), feedback_log=log)
    assert _score(fresh.history, q, "cheap") == (0.0, 1)


def test_a_replacement_after_a_save_is_not_counted_twice(tmp_path):
    log, saved = tmp_path / "feedback.log", tmp_path / "history"
    router = Router(CARDS, toy_history(), embedder=toy_embedder(), feedback_log=log)
    q = "trivia: saved in between"
    call_id = _answered(router, q)
    router.record_feedback(call_id, 1.0)
    router.history.save(saved)  # the first feedback is folded into the store
    router.record_feedback(call_id, 0.0)
    router.history.detach_log()
    later = History.load(saved)
    later.attach_log(log)  # replays only what came after the save: the replacement
    assert _score(later, q, "cheap") == (0.0, 1)


def test_langchain_feedback_on_the_same_reply_twice():
    router = Router(CARDS, toy_history(), embedder=toy_embedder())
    llm = SCOPERouter(candidates=make_candidates(), router=router, min_accuracy=0.9)
    reply = llm.invoke("trivia: asked once")
    llm.record_feedback(reply, 1.0)
    llm.record_feedback(reply, 0.0)
    assert _score(router.history, "trivia: asked once", "cheap") == (0.0, 1)


def test_a_call_id_reused_for_another_model_adds_an_outcome_and_leaves_the_first_model_alone():
    history = toy_history()
    embedder = toy_embedder()
    q = "trivia: one call id, two models"
    history.add(q, embedder.embed_one(q), [{"model": "cheap", "correct": 1.0}], call_id="call-1")
    history.add(q, embedder.embed_one(q), [{"model": "mid", "correct": 0.0}], call_id="call-1")
    assert _score(history, q, "cheap") == (1.0, 1)
    assert _score(history, q, "mid") == (0.0, 1)
    history.add(q, embedder.embed_one(q), [{"model": "mid", "correct": 0.5}], call_id="call-1")
    assert _score(history, q, "mid") == (0.5, 1)
    assert _score(history, q, "cheap") == (1.0, 1)
