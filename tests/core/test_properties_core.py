"""Property tests at the core's public faces: any input either works or raises the library's own
`ScopeError` subclass naming the problem, and a failed call leaves every store unchanged."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CARDS, DIM, toy_embedder, toy_history
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scope_shared.routing.knobs import KNOB_KINDS
from scope_shared import Decision, History, BudgetExceeded, Ledger, ModelCard, Router, ScopeError
from scope_shared.errors import HistoryStoreError, InvalidCardError, InvalidKnobError, InvalidQueryError
from scope_shared.cards import to_cards
from scope_shared.query import is_blank

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
ROUTER = Router(CARDS, toy_history(), embedder=toy_embedder())

anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(), st.binary(),
    st.lists(st.text(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))


def snapshot(h: History) -> tuple:
    return (len(h), h.n_records, tuple(h.models), h.embeddings.tobytes(), tuple(
        (m, h.model_arrays(m).scores.tobytes(), h.model_arrays(m).tokens.tobytes()) for m in h.models))


@SETTINGS
@given(st.text(max_size=300))
def test_any_unicode_query_routes_or_raises_invalid_query(q):
    try:
        d = ROUTER.route(q)
    except InvalidQueryError:
        assert is_blank(q)  # whitespace and invisible characters only (hypothesis draws no surrogates)
        return
    assert isinstance(d, Decision) and d.model in ROUTER.models
    assert all(0 <= e.p_correct <= 1 and e.expected_cost >= 0 for e in d.estimates.values())


@SETTINGS
@given(anything)
def test_non_string_queries_raise_invalid_query(q):
    if isinstance(q, str) and q.strip():
        return
    with pytest.raises(InvalidQueryError):
        ROUTER.route(q)  # type: ignore[arg-type]


def test_one_megabyte_query_is_routed_and_priced():
    q = "trivia " + "é🙂x" * 350_000  # > 1 MB of UTF-8
    assert len(q.encode()) > 1_000_000
    d = ROUTER.route(q)
    assert d.chosen.input_tokens == pytest.approx(len(q) / 4, rel=0.01)
    with pytest.raises(InvalidQueryError, match="above the"):
        ROUTER.route("x" * 2_000_001)


@SETTINGS
@given(numbers, numbers)
def test_any_price_makes_a_card_or_raises_invalid_card(pin, pout):
    try:
        card = ModelCard.create(name="m", input_price=pin, output_price=pout)
    except InvalidCardError as exc:
        assert not (math.isfinite(pin) and pin >= 0 and math.isfinite(pout) and pout >= 0)
        assert "price" in str(exc)
        return
    assert card.input_price >= 0 and card.output_price >= 0


@SETTINGS
@given(st.lists(st.sampled_from(["cheap", "mid", "strong", " cheap", "mid "]), min_size=1, max_size=6))
def test_duplicate_model_names_are_rejected(names):
    cards = [{"name": n, "input_price": 1.0, "output_price": 1.0} for n in names]
    stripped = [n.strip() for n in names]
    if len(set(stripped)) < len(stripped):
        with pytest.raises(InvalidCardError, match="duplicate"):
            to_cards(cards)
        with pytest.raises(InvalidCardError):
            Router(cards, toy_history(), embedder=toy_embedder())
    else:
        assert list(to_cards(cards)) == list(dict.fromkeys(stripped))


@SETTINGS
@given(st.sampled_from(KNOB_KINDS), numbers)
def test_any_knob_value_routes_or_raises_invalid_knob(kind, value):
    try:
        d = ROUTER.route("a math question", knob={kind: value})
    except InvalidKnobError:
        return
    assert d.model in ROUTER.models


@SETTINGS
@given(anything, numbers, st.one_of(st.none(), numbers), st.one_of(st.none(), numbers))
def test_failed_record_outcome_changes_nothing(model, correct, out_tok, in_tok):
    router = Router(CARDS, toy_history(per_topic=3), embedder=toy_embedder())
    before = snapshot(router.history)
    try:
        router.record_outcome("a code question", model, correct, output_tokens=out_tok, input_tokens=in_tok)  # type: ignore[arg-type]
    except ScopeError:
        assert snapshot(router.history) == before
        return
    assert router.history.n_records == before[1] + 1


@SETTINGS
@given(
    st.lists(st.integers(-5, 80), max_size=20),
    st.lists(numbers, max_size=20),
    st.one_of(st.none(), st.lists(numbers, max_size=20)),
    st.sampled_from(["cheap", "", "new-model"]),
)
def test_bulk_outcomes_all_or_nothing(qids, correct, tokens, model):
    h = toy_history(per_topic=3)
    before = snapshot(h)
    try:
        h.add_outcome_arrays(qids, model, correct, tokens)
    except ScopeError:
        assert snapshot(h) == before
        return
    assert h.n_records == before[1] + len(qids)


@SETTINGS
@given(numbers)
def test_ledger_rejects_bad_amounts_without_changing(amount):
    led = Ledger(budget=1.0)
    try:
        r = led.reserve(amount)  # type: ignore[arg-type]
    except (ScopeError, BudgetExceeded):  # a bad amount, or one that does not fit
        assert led.remaining == 1.0 and led.spent == 0.0
        return
    r.cancel()
    assert led.remaining == 1.0


# ---------------------------------------------------------------- malformed history stores
STORE = None


def _store(tmp: Path) -> Path:
    global STORE
    if STORE is None:
        STORE = tmp / "pristine"
        toy_history(per_topic=4).save(STORE)
    return STORE


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return _store(tmp_path_factory.mktemp("store"))


@SETTINGS
@given(data=st.data())
def test_corrupted_store_files_raise_history_store_error(pristine, tmp_path_factory, data):
    d = tmp_path_factory.mktemp("c")
    shutil.copytree(pristine, d / "h")
    files = sorted(p for p in (d / "h").iterdir())
    f = data.draw(st.sampled_from(files))
    raw = bytearray(f.read_bytes())
    how = data.draw(st.sampled_from(["flip", "truncate", "garbage", "empty"]))
    if how == "flip" and raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif how == "garbage":
        raw += data.draw(st.binary(min_size=1, max_size=50))
    else:
        raw = bytearray()
    f.write_bytes(bytes(raw))
    listing = {p.name: p.read_bytes() for p in (d / "h").iterdir()}
    try:
        h = History.load(d / "h")
    except HistoryStoreError:
        pass
    else:  # only a change the format does not care about (e.g. manifest whitespace) may load
        assert f.name == "manifest.json" and len(h) == 12
    assert {p.name: p.read_bytes() for p in (d / "h").iterdir()} == listing  # load never writes


@SETTINGS
@given(st.dictionaries(st.sampled_from(["format", "version", "dim", "files", "sha256", "index", "embedder",
                                        "feedback_applied", "outcome_models", "outcome_sources"]), json_values, max_size=4))
def test_manifest_fields_of_any_type_raise_history_store_error(pristine, tmp_path_factory, patch):
    d = tmp_path_factory.mktemp("m") / "h"
    shutil.copytree(pristine, d)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest.update(patch)
    (d / "manifest.json").write_text(json.dumps(manifest))
    try:
        History.load(d)
    except HistoryStoreError:
        pass


def test_failed_save_leaves_the_previous_store_intact(tmp_path, monkeypatch):
    h = toy_history(per_topic=4)
    h.save(tmp_path / "h")
    before = {p.name: p.read_bytes() for p in (tmp_path / "h").iterdir()}
    h.add("a new math question", toy_embedder().embed_one("a new math question"), [])
    import scope_shared.history.store as store

    calls = {"n": 0}
    real = store.atomic_write

    def failing(path, write):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(path, write)

    monkeypatch.setattr(store, "atomic_write", failing)
    with pytest.raises(OSError):
        h.save(tmp_path / "h")
    monkeypatch.setattr(store, "atomic_write", real)
    loaded = History.load(tmp_path / "h")
    assert len(loaded) == 12
    assert before["manifest.json"] == (tmp_path / "h" / "manifest.json").read_bytes()


def test_wrong_embedding_shapes_and_values(tmp_path):
    h = History(DIM)
    for bad in (np.ones(DIM + 1), np.full(DIM, np.nan), np.full(DIM, np.inf)):
        with pytest.raises(ScopeError):
            h.add("a question", bad)
    with pytest.raises(ScopeError):
        History(0)
    with pytest.raises(ScopeError, match="bad vector index spec"):
        History(DIM, index="NoSuchIndex,XX")
    assert len(h) == 0
