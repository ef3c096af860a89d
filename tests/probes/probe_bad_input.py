"""The bad-input table: every public entry point, fed what callers really send by mistake.

Each row must raise the library's own error (`ScopeError` or a subclass) naming the problem and
leave the router's history (and its feedback log) as it was. The poisoned-state rows go further:
the bad value must not get in at all, so every later save still works.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from conftest import CARDS, DIM, toy_embedder, toy_history
from probe_common import Case, Verdict, expect_error, fail, ok, raised, snapshot

from scope_shared import FunctionEmbedder, History, KNNEstimator, ModelCard, Outcome, Router, ScopeError
from scope_shared.errors import HistoryStoreError, InvalidQueryError
from scope_shared.routing import make_knob

GROUP = "bad-input"
NAN, INF = float("nan"), float("inf")
BAD_QUERIES = {
    "none": None, "int": 5, "bytes": b"q", "empty": "", "spaces": " \n\t", "zero-width-space": "\u200b",
    "invisible-only": "\u200b\u200c\u200d\ufeff\u2060\u00ad", "lone-surrogate": "\ud800",
    "surrogate-inside": "math \udfff question", "list": ["q"],
}
VEC = np.eye(DIM, dtype=np.float32)[0]


def _key(q: Any) -> Any:
    return tuple(q) if isinstance(q, list) else q


def _router() -> Router:
    return Router(CARDS, toy_history(per_topic=3), embedder=toy_embedder())


def _on_router(call: Callable[[Router], Any], error: type[BaseException] = ScopeError) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        r = _router()
        return expect_error(lambda: call(r), error, lambda: snapshot(r.history))
    return run


def _on_history(call: Callable[[History], Any]) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        h = toy_history(per_topic=3)
        return expect_error(lambda: call(h), ScopeError, lambda: snapshot(h))
    return run


def _plain(call: Callable[[Path], Any], error: type[BaseException] = ScopeError) -> Callable[[Path], Verdict]:
    return lambda tmp: expect_error(lambda: call(tmp), error)


def _router_args(**kw: Any) -> Callable[[Path], Any]:
    def make(tmp: Path) -> Router:
        args: dict[str, Any] = {"cards": CARDS, "history": toy_history(per_topic=3), "embedder": toy_embedder()}
        args.update({k: (v(tmp) if callable(v) and k == "feedback_log" else v) for k, v in kw.items()})
        return Router(**args)
    return make


def _nan_embedder_routes_nothing_and_caches_nothing(tmp: Path) -> Verdict:
    emb = FunctionEmbedder(lambda ts: np.full((len(ts), DIM), np.nan), DIM, name="toy")
    r = Router(CARDS, toy_history(per_topic=3), embedder=emb)
    v = expect_error(lambda: r.route("a math question"), ScopeError)
    if not v.ok:
        return v
    cache = getattr(emb, "_cache", {})
    if any(not np.all(np.isfinite(x)) for x in cache.values()):
        return fail("a non-finite vector was cached")
    return ok()


def _zero_embedder(tmp: Path) -> Verdict:
    emb = FunctionEmbedder(lambda ts: np.zeros((len(ts), DIM)), DIM, name="toy")
    r = Router(CARDS, toy_history(per_topic=3), embedder=emb)
    return expect_error(lambda: r.route("a math question"), ScopeError)


def _surrogate_never_poisons_the_store(tmp: Path) -> Verdict:
    """A lone surrogate is refused at the door, so the history (and its log) can always be saved."""
    r = Router(CARDS, toy_history(per_topic=3), embedder=toy_embedder(), feedback_log=tmp / "fb.log")
    for call in (lambda: r.route("\ud800"), lambda: r.record_outcome("math \ud800", "cheap", 1.0)):
        try:
            call()
        except ScopeError:
            pass
        except Exception as exc:  # noqa: BLE001
            return fail(f"raised {raised(exc)}")
    try:
        r.history.save(tmp / "store")
        again = History.load(tmp / "store")
        again.attach_log(tmp / "fb.log")
        again.save(tmp / "store2")
    except Exception as exc:  # noqa: BLE001
        return fail(f"the store is poisoned: {raised(exc)}")
    return ok()


def _model_name_is_stripped(tmp: Path) -> Verdict:
    h = toy_history(per_topic=3)
    h.add_outcomes(0, [Outcome.create(model="cheap ", correct=1.0)])
    return ok() if h.models == ["cheap", "mid", "strong"] else fail(f"models became {h.models}")


def _float_question_id_half_write(tmp: Path) -> Verdict:
    """``add_outcomes(1.5, ...)`` for a new model must not leave the model in memory only."""
    h = toy_history(per_topic=3)
    v = expect_error(lambda: h.add_outcomes(1.5, [Outcome(model="newcomer", correct=1.0)]), ScopeError, lambda: snapshot(h))
    if v.ok and "newcomer" in h.models:
        return fail("the model exists in memory after the failed call")
    return v


def _bool_question_id(tmp: Path) -> Verdict:
    h = toy_history(per_topic=3)
    return expect_error(lambda: h.add_outcomes(True, [Outcome(model="newcomer", correct=1.0)]), ScopeError, lambda: snapshot(h))


def _search_k_zero(tmp: Path) -> Verdict:
    h = toy_history(per_topic=3)
    try:
        sims, ids = h.search(VEC, 0)
    except ScopeError:
        return ok()
    except Exception as exc:  # noqa: BLE001
        return fail(f"raised {raised(exc)}")
    return fail(f"search(k=0) returned {ids.shape[1]} hit(s)")


def _cli(argv: Callable[[Path], list[str]], tamper: Callable[[dict], None] | None = None) -> Callable[[Path], Verdict]:
    """``scope ...`` on a (possibly tampered) store must exit 2 with a message, not a traceback."""
    def run(tmp: Path) -> Verdict:
        import contextlib
        import io
        import json

        from scope_shared.cli import main

        toy_history(per_topic=3).save(tmp / "h")
        if tamper is not None:
            m = json.loads((tmp / "h" / "manifest.json").read_text())
            tamper(m)
            (tmp / "h" / "manifest.json").write_text(json.dumps(m))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(argv(tmp))
            except SystemExit as exc:
                rc = exc.code
            except Exception as exc:  # noqa: BLE001
                return fail(f"the command raised {raised(exc)}")
        return ok() if rc == 2 and "error" in err.getvalue() else fail(f"exit {rc}: {err.getvalue()[-200:]!r}")
    return run


def _cases() -> list[tuple[str, Callable[[Path], Verdict]]]:
    rows: list[tuple[str, Callable[[Path], Verdict]]] = []
    for name, q in BAD_QUERIES.items():
        rows += [
            (f"route(query={name})", _on_router(lambda r, q=q: r.route(q), InvalidQueryError)),
            (f"estimate(query={name})", _on_router(lambda r, q=q: r.estimate(q), InvalidQueryError)),
            (f"route_batch([{name}])", _on_router(lambda r, q=q: r.route_batch(["fine", q]), InvalidQueryError)),
            (f"record_outcome(query={name})", _on_router(lambda r, q=q: r.record_outcome(q, "cheap", 1.0))),
            (f"add_model(question={name})", _on_router(lambda r, q=q: r.add_model({"name": "new", "input_price": 1, "output_price": 1}, {_key(q): 1.0}))),
        ]
    for name, value in {"str": "x", "int": 5, "dict": {"budget": 1.0}}.items():
        rows.append((f"route(ledger={name})", _on_router(lambda r, v=value: r.route("math q", ledger=v))))
    rows += [
        ("route(knob='x')", _on_router(lambda r: r.route("math q", knob="x"))),
        ("route(candidates=5)", _on_router(lambda r: r.route("math q", candidates=5))),
        ("route(candidates='cheap')", _on_router(lambda r: r.route("math q", candidates="cheap"))),
        ("route(candidates=[5])", _on_router(lambda r: r.route("math q", candidates=[5]))),
        ("route(candidates=[])", _on_router(lambda r: r.route("math q", candidates=[]))),
        ("route(max_cost=nan)", _on_router(lambda r: r.route("math q", knob={"max_cost": NAN}))),
        ("route(min_accuracy='high')", _on_router(lambda r: r.route("math q", knob={"min_accuracy": "high"}))),
        ("route_batch(None)", _on_router(lambda r: r.route_batch(None), InvalidQueryError)),
        ("route_batch('abc')", _on_router(lambda r: r.route_batch("abc"), InvalidQueryError)),
        ("embed(5)", _on_router(lambda r: r.embed(5), InvalidQueryError)),
        ("decide(ledger='x')", _on_router(lambda r: r.decide(r.estimate("math q"), make_knob("alpha", 0.5), ledger="x"))),
        ("record_outcome(model=None)", _on_router(lambda r: r.record_outcome("math q", None, 1.0))),
        ("record_outcome(model=['cheap'])", _on_router(lambda r: r.record_outcome("math q", ["cheap"], 1.0))),
        ("record_outcome(correct=1.5)", _on_router(lambda r: r.record_outcome("math q", "cheap", 1.5))),
        ("record_outcome(correct=nan)", _on_router(lambda r: r.record_outcome("math q", "cheap", NAN))),
        ("record_outcome(correct='yes')", _on_router(lambda r: r.record_outcome("math q", "cheap", "yes"))),
        ("record_outcome(output_tokens=-1)", _on_router(lambda r: r.record_outcome("math q", "cheap", 1.0, output_tokens=-1))),
        ("record_outcome(output_tokens=inf)", _on_router(lambda r: r.record_outcome("math q", "cheap", 1.0, output_tokens=INF))),
        ("record_outcome(source=5)", _on_router(lambda r: r.record_outcome("math q", "cheap", 1.0, source=5))),
        ("record_outcome(source=' ')", _on_router(lambda r: r.record_outcome("math q", "cheap", 1.0, source=" "))),
        ("record_outcome(source=surrogate)", _on_router(lambda r: r.record_outcome("math q", "cheap", 1.0, source="\ud800"))),
        ("record_feedback(5)", _on_router(lambda r: r.record_feedback(5, 1.0))),
        ("record_feedback('no-such-call')", _on_router(lambda r: r.record_feedback("no-such-call", 1.0))),
        ("add_model(card='x')", _on_router(lambda r: r.add_model("x", {"q": 1.0}))),
        ("add_model(outcomes=None)", _on_router(lambda r: r.add_model({"name": "n", "input_price": 1, "output_price": 1}, None))),
        ("add_model(outcomes=['q'])", _on_router(lambda r: r.add_model({"name": "n", "input_price": 1, "output_price": 1}, ["q"]))),
        ("add_model(outcome='x')", _on_router(lambda r: r.add_model({"name": "n", "input_price": 1, "output_price": 1}, {"q": "x"}))),
        ("add_model(outcome=2.0)", _on_router(lambda r: r.add_model({"name": "n", "input_price": 1, "output_price": 1}, {"q": 2.0}))),
        ("add_model(name=surrogate)", _on_router(lambda r: r.add_model({"name": "\ud800", "input_price": 1, "output_price": 1}, {"q": 1.0}))),
        # Router construction
        ("Router(cards='abc')", _plain(_router_args(cards="abc"))),
        ("Router(cards=5)", _plain(_router_args(cards=5))),
        ("Router(cards=[None])", _plain(_router_args(cards=[None]))),
        ("Router(cards=[{}])", _plain(_router_args(cards=[{}]))),
        ("Router(history='8')", _plain(_router_args(history="8"))),
        ("Router(history=None)", _plain(_router_args(history=None))),
        ("Router(estimator='knn')", _plain(_router_args(estimator="knn"))),
        ("Router(embedder=5)", _plain(_router_args(embedder=5))),
        ("Router(default_knob='x')", _plain(_router_args(default_knob="x"))),
        ("Router(default_knob={'min_accuracy': 2})", _plain(_router_args(default_knob={"min_accuracy": 2}))),
        ("Router(token_counter=5)", _plain(_router_args(token_counter=5))),
        ("Router(token_counter=nan)", lambda tmp: expect_error(lambda: _router_args(token_counter=lambda t: NAN)(tmp).route("math q"))),
        ("Router(default_output_tokens=nan)", _plain(_router_args(default_output_tokens=NAN))),
        ("Router(default_output_tokens=-1)", _plain(_router_args(default_output_tokens=-1))),
        ("Router(default_output_tokens='x')", _plain(_router_args(default_output_tokens="x"))),
        ("Router(feedback_log=5)", _plain(_router_args(feedback_log=5))),
        ("Router(feedback_log=dir)", _plain(_router_args(feedback_log=lambda tmp: tmp))),
        # History
        *[(f"History(dim={d!r})", _plain(lambda tmp, d=d: History(d))) for d in ("8", 0, -1, 8.5, True, None, 10**9)],
        *[(f"History(index={s!r})", _plain(lambda tmp, s=s: History(DIM, index=s)))
          for s in ("RR0,Flat", "HNSW1", "IVF1,PQ1x0", "PQ1x0", "HNSW1,SQ8", "PCA4,Flat", "IVF{0},Flat", 5)],
        ("History(index={bogus})", _plain(lambda tmp: History(DIM, index={"spec": "flat", "bogus": 1}))),
        *[(f"add(text={name})", _on_history(lambda h, q=q: h.add(q, VEC, [])))
          for name, q in BAD_QUERIES.items() if name != "list"],
        ("add(embedding=None)", _on_history(lambda h: h.add("a new q", None, []))),
        ("add(embedding='x')", _on_history(lambda h: h.add("a new q", "x", []))),
        ("add(embedding=nan)", _on_history(lambda h: h.add("a new q", np.full(DIM, np.nan), []))),
        ("add(embedding=wrong dim)", _on_history(lambda h: h.add("a new q", np.ones(DIM + 1), []))),
        ("add(outcomes=5)", _on_history(lambda h: h.add("a new q", VEC, 5))),
        ("add(outcomes=['x'])", _on_history(lambda h: h.add("a new q", VEC, ["x"]))),
        ("add(outcome model=' ')", _on_history(lambda h: h.add("a new q", VEC, [{"model": " ", "correct": 1.0}]))),
        ("add(outcome correct=2)", _on_history(lambda h: h.add("a new q", VEC, [{"model": "m", "correct": 2.0}]))),
        ("add(benchmark=5)", _on_history(lambda h: h.add("a new q", VEC, [], benchmark=5))),
        ("add_questions('abc')", _on_history(lambda h: h.add_questions("abc", np.ones((3, DIM))))),
        ("add_questions(embeddings=None)", _on_history(lambda h: h.add_questions(["new"], None))),
        ("add_questions([surrogate])", _on_history(lambda h: h.add_questions(["\ud800"], VEC[None]))),
        ("add_outcomes(1.5)", _float_question_id_half_write),
        ("add_outcomes(True)", _bool_question_id),
        ("add_outcomes('0')", _on_history(lambda h: h.add_outcomes("0", [Outcome(model="newcomer", correct=1.0)]))),
        ("add_outcomes(-1)", _on_history(lambda h: h.add_outcomes(-1, [Outcome(model="newcomer", correct=1.0)]))),
        ("add_outcomes(10**6)", _on_history(lambda h: h.add_outcomes(10**6, [Outcome(model="newcomer", correct=1.0)]))),
        ("add_outcomes(0, 5)", _on_history(lambda h: h.add_outcomes(0, 5))),
        ("add_outcome_arrays(ids=[1.5])", _on_history(lambda h: h.add_outcome_arrays([1.5], "newcomer", [1.0]))),
        ("add_outcome_arrays(ids=['x'])", _on_history(lambda h: h.add_outcome_arrays(["x"], "newcomer", [1.0]))),
        ("add_outcome_arrays(model=5)", _on_history(lambda h: h.add_outcome_arrays([0], 5, [1.0]))),
        ("add_outcome_arrays(model=surrogate)", _on_history(lambda h: h.add_outcome_arrays([0], "\ud800", [1.0]))),
        ("add_outcome_arrays(correct=['x'])", _on_history(lambda h: h.add_outcome_arrays([0], "newcomer", ["x"]))),
        ("add_outcome_arrays(correct=[2])", _on_history(lambda h: h.add_outcome_arrays([0], "newcomer", [2.0]))),
        *[(f"search({name})", _on_history(lambda h, a=a: h.search(*a)))
          for name, a in {"None": (None, 3), "'x'": ("x", 3), "k=-1": (VEC, -1), "k='3'": (VEC, "3"),
                          "k=1.5": (VEC, 1.5), "nan vector": (np.full(DIM, np.nan), 3), "wrong dim": (np.ones(DIM + 2), 3)}.items()],
        ("search(k=0)", _search_k_zero),
        ("anchors(None)", _on_history(lambda h: h.anchors(None, ["cheap"], 3))),
        ("anchors(models='cheap')", _on_history(lambda h: h.anchors(VEC, "cheap", 3))),
        ("anchors(models=[5])", _on_history(lambda h: h.anchors(VEC, [5], 3))),
        ("anchors(models=[['x']])", _on_history(lambda h: h.anchors(VEC, [["x"]], 3))),
        ("anchors(k=0)", _on_history(lambda h: h.anchors(VEC, ["cheap"], 0))),
        ("anchors(exclude_ids='x')", _on_history(lambda h: h.anchors(VEC, ["cheap"], 3, exclude_ids="x"))),
        *[(f"text({q!r})", _on_history(lambda h, q=q: h.text(q))) for q in (10**6, "0", None, -1)],
        ("benchmark(10**6)", _on_history(lambda h: h.benchmark(10**6))),
        ("question_id(None)", _on_history(lambda h: h.question_id(None))),
        ("vectors(['x'])", _on_history(lambda h: h.vectors(["x"]))),
        ("vectors([10**6])", _on_history(lambda h: h.vectors([10**6]))),
        ("model_stats(['x'])", _on_history(lambda h: h.model_stats(["x"]))),
        ("n_outcomes(None)", _on_history(lambda h: h.n_outcomes(None))),
        ("save(None)", _on_history(lambda h: h.save(None))),
        ("save(5)", _on_history(lambda h: h.save(5))),
        ("save('')", _on_history(lambda h: h.save(""))),
        ("save(a file)", lambda tmp: (tmp.joinpath("f").write_text("x"), expect_error(lambda: toy_history(3).save(tmp / "f")))[1]),
        ("load(None)", _plain(lambda tmp: History.load(None), HistoryStoreError)),
        ("load(5)", _plain(lambda tmp: History.load(5), HistoryStoreError)),
        ("load(missing)", _plain(lambda tmp: History.load(tmp / "missing"), HistoryStoreError)),
        ("load(a file)", lambda tmp: (tmp.joinpath("f").write_text("x"), expect_error(lambda: History.load(tmp / "f"), HistoryStoreError))[1]),
        ("attach_log(None)", _on_history(lambda h: h.attach_log(None))),
        ("attach_log(5)", _on_history(lambda h: h.attach_log(5))),
        ("attach_log(dir)", lambda tmp: expect_error(lambda: toy_history(3).attach_log(tmp))),
        # cards, outcomes, estimators, knobs, embedders
        ("ModelCard.create(name=5)", _plain(lambda tmp: ModelCard.create(name=5, input_price=1, output_price=1))),
        ("ModelCard.create(name=surrogate)", _plain(lambda tmp: ModelCard.create(name="\ud800", input_price=1, output_price=1))),
        ("ModelCard.create(tags=[' '])", _plain(lambda tmp: ModelCard.create(name="a", input_price=1, output_price=1, tags=(" ",)))),
        ("Outcome.create(model=' ')", _plain(lambda tmp: Outcome.create(model=" ", correct=1.0))),
        ("Outcome.create(model=surrogate)", _plain(lambda tmp: Outcome.create(model="\ud800", correct=1.0))),
        ("Outcome.create(bogus=1)", _plain(lambda tmp: Outcome.create(model="m", correct=1.0, bogus=1))),
        ("Outcome model stripped", _model_name_is_stripped),
        *[(f"KNNEstimator({kw})", _plain(lambda tmp, kw=kw: KNNEstimator(**kw)))
          for kw in ({"k": "5"}, {"k": 0}, {"temperature": NAN}, {"temperature": "x"}, {"prior_weight": -1})],
        ("make_knob('alpha', '0.5')", _plain(lambda tmp: make_knob("alpha", "0.5"))),
        ("make_knob(['alpha'], 0.5)", _plain(lambda tmp: make_knob(["alpha"], 0.5))),
        ("embedder returns NaN", _nan_embedder_routes_nothing_and_caches_nothing),
        ("embedder returns zeros", _zero_embedder),
        ("embedder returns wrong shape", lambda tmp: expect_error(lambda: Router(CARDS, toy_history(3), embedder=FunctionEmbedder(lambda ts: np.ones((len(ts) + 1, DIM)), DIM)).route("math q"))),
        ("lone surrogate never poisons the store", _surrogate_never_poisons_the_store),
        # the command line
        ("scope history info (file name outside the store)", _cli(lambda tmp: ["history", "info", str(tmp / "h")],
                                                                  lambda m: m["files"].__setitem__("cards", "../../x"))),
        ("scope history info (index 'RR0,Flat')", _cli(lambda tmp: ["history", "info", str(tmp / "h")],
                                                       lambda m: m.__setitem__("index", {"spec": "RR0,Flat", "train_size": 4}))),
        ("scope route --estimator missing", _cli(lambda tmp: ["route", "math q", "--history", str(tmp / "h"), "--estimator", str(tmp / "none")])),
    ]
    return rows


def cases() -> list[Case]:
    return [Case(GROUP, name, run) for name, run in _cases()]

