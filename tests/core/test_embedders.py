"""The fast (static, distilled) embedder: building, caching, selecting it by name, truncation, and
histories that refuse another embedder's queries until re-embedded.

A small version is distilled from the bundled MiniLM for real (the 3,000 most frequent tokens, 48
dimensions: seconds, not the full build's minutes) into a temporary embedder folder.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import CARDS, toy_history
from scope_shared import FunctionEmbedder, History, Router, ScopeError
from scope_shared.cli import main
from scope_shared.embedders import as_embedder, default_model_path, named
from scope_shared.embedders.distill import BUILD_FILE, CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, DistillConfig
from scope_shared.embedders.static import StaticEmbedder, Truncation
from scope_shared.history.reembed import check_embedder, reembed

SMALL = named.FastSpec(distill=DistillConfig(pca_dims=48, vocab_size=3000))


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    """A small fast model, built once through `build_fast` into its own embedder folder."""
    root = tmp_path_factory.mktemp("embedders")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOPE_EMBEDDER_DIR", str(root))
    try:
        path = named.build_fast(SMALL, show_progress=False)
    finally:
        mp.undo()
    return path


@pytest.fixture
def as_fast(small_dir, tmp_path, monkeypatch):
    """Make the small model the one the name ``"fast"`` stands for (an empty process cache)."""
    monkeypatch.setenv("SCOPE_EMBEDDER_DIR", str(tmp_path))
    monkeypatch.setattr(named, "_FAST", {})
    shutil.copytree(small_dir, named.fast_model_dir())
    return named.fast_embedder(build=False)


def test_build_writes_a_model2vec_folder_and_is_cached(small_dir, monkeypatch):
    for f in (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE, BUILD_FILE):
        assert (small_dir / f).is_file()
    config = json.loads((small_dir / CONFIG_FILE).read_text())
    assert config["model_type"] == "model2vec" and config["hidden_dim"] == 48
    build = json.loads((small_dir / BUILD_FILE).read_text())
    assert build["vocab_size"] == 3000 and build["tokens"] == 3002  # + [PAD], [UNK]
    table = StaticEmbedder(small_dir)._table
    assert not table[0].any() and table[1].any()  # [PAD] adds nothing, [UNK] has the teacher's vector
    emb = StaticEmbedder(small_dir)
    assert emb.dim == 48 and emb._table.shape[0] == 3002
    # built once: a second build with the folder present does nothing
    monkeypatch.setenv("SCOPE_EMBEDDER_DIR", str(small_dir.parent))
    before = (small_dir / MODEL_FILE).stat().st_mtime_ns
    assert named.build_fast(SMALL) == small_dir
    assert (small_dir / MODEL_FILE).stat().st_mtime_ns == before


def test_static_vectors_are_unit_deterministic_and_meaningful(small_dir):
    emb = StaticEmbedder(small_dir, cache_size=0)
    texts = ["the cat sat on the mat", "a cat was sitting on a mat", "the government raised taxes this year"]
    v = emb.embed(texts)
    assert v.shape == (3, 48) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(v, emb.embed(texts))
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    # a batch gives the same rows as single queries
    np.testing.assert_allclose(np.stack([emb.embed_one(t) for t in texts]), v, atol=1e-6)
    # a text with no known token gets the [UNK] vector, never the zero vector
    odd = emb.embed(["\u2603\u2603", "\u2604"])
    np.testing.assert_allclose(np.linalg.norm(odd, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(odd[0], odd[1], atol=1e-6)


def test_truncation_keeps_head_and_tail():
    assert Truncation(head=2, tail=3).apply(list(range(10))) == [0, 1, 7, 8, 9]
    assert Truncation(head=2, tail=3).apply([1, 2, 3]) == [1, 2, 3]
    assert Truncation(tail=2).apply([1, 2, 3]) == [2, 3]
    assert Truncation().apply([1, 2, 3]) == [1, 2, 3]
    assert Truncation(head=32, tail=224).label == "head32+tail224"
    with pytest.raises(ScopeError):
        Truncation(head=-1)
    with pytest.raises(ScopeError):
        Truncation(head=0, tail=0)


def test_tail_truncation_reads_only_the_end_of_a_long_prompt(small_dir):
    full = StaticEmbedder(small_dir, cache_size=0)
    question = "what is the capital of the country"
    n = len(full.token_ids(question))
    tail = StaticEmbedder(small_dir, truncation=Truncation(tail=n), cache_size=0)
    assert tail.name.endswith(f"+tail{n}") and tail.name != full.name
    prompt = "here are some examples of a game and the rules of the game . " * 20 + question
    np.testing.assert_allclose(tail.embed_one(prompt), full.embed_one(question), atol=1e-6)
    assert full.embed_one(prompt) @ full.embed_one(question) < 0.99


def test_fast_embedder_builds_at_first_use(tmp_path, monkeypatch):
    tiny = named.FastSpec(distill=DistillConfig(pca_dims=16, vocab_size=256))
    monkeypatch.setenv("SCOPE_EMBEDDER_DIR", str(tmp_path))
    monkeypatch.setattr(named, "_FAST", {})
    with pytest.raises(ScopeError, match="scope embedder build"):
        named.fast_embedder(tiny, build=False)
    emb = named.fast_embedder(tiny)  # builds it
    assert named.is_built(tiny) and named.fast_model_dir(tiny).parent == tmp_path
    assert emb is named.fast_embedder(tiny)  # one per process
    assert emb.dim == 16 and emb.name == named.fast_recorded_name(tiny)


def test_selecting_fast_by_name(as_fast):
    emb = as_embedder("fast")
    assert emb is as_fast and emb.name == named.fast_recorded_name()
    assert as_embedder(emb.name) is emb  # the name a history records means the same embedder
    assert as_embedder("minilm") is as_embedder(None)


def _toy_routing_table():
    from scope_shared.data.table import RoutingTable

    h = toy_history(per_topic=8)
    models = h.models
    scores = np.array([[h.model_arrays(m).scores[i] for m in models] for i in range(len(h))])
    return RoutingTable(name="toy", questions=[h.text(i) for i in range(len(h))], benchmarks=h.benchmarks,
                        models=models, scores=scores, cards={c.name: c for c in CARDS})


def test_history_built_with_fast_routes_with_fast_and_refuses_others(as_fast, tmp_path):
    history = _toy_routing_table().to_history("fast", show_progress=False)
    assert history.embedder_name == as_fast.name and history.dim == as_fast.dim
    history.save(tmp_path / "h")
    loaded = History.load(tmp_path / "h")
    router = Router(CARDS, loaded)  # no embedder given: the one the history records
    assert router.embedder is as_fast
    assert router.route("a math question about sums").model in {c.name for c in CARDS}
    same_dim = FunctionEmbedder(lambda ts: np.ones((len(ts), as_fast.dim)), as_fast.dim, name="other")
    with pytest.raises(ScopeError, match="embedded with .*scope history reembed"):
        Router(CARDS, loaded, embedder=same_dim)
    with pytest.raises(ScopeError, match="8-d"):
        Router(CARDS, toy_history(), embedder="fast")


def test_reembed_keeps_outcomes_and_cards(as_fast):
    old = toy_history()
    with pytest.raises(ScopeError):
        check_embedder(old, as_fast)
    new = reembed(old, as_fast, show_progress=False)
    check_embedder(new, as_fast)
    assert (new.embedder_name, new.dim, len(new)) == (as_fast.name, as_fast.dim, len(old))
    assert new.n_records == old.n_records and new.cards == old.cards and new.models == old.models
    for m in old.models:
        a, b = old.model_arrays(m), new.model_arrays(m)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_allclose(new.embeddings, as_fast.embed([old.text(i) for i in range(len(old))]), atol=1e-6)
    Router(CARDS, new).route("a trivia question")


def test_cli_reembed_and_list(as_fast, tmp_path, capsys):
    toy_history().save(tmp_path / "h")
    assert main(["history", "reembed", "--history", str(tmp_path / "h"), "--embedder", "fast", "--out", str(tmp_path / "f")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from"] == "toy" and report["to"] == as_fast.name and report["questions"] == 60
    assert History.load(tmp_path / "f").embedder_name == as_fast.name
    assert main(["history", "reembed", "--history", str(tmp_path / "f"), "--embedder", "fast"]) == 2
    assert "already embedded" in capsys.readouterr().err
    assert main(["embedder", "list"]) == 0
    out = capsys.readouterr().out
    assert "minilm" in out and "built:" in out and as_fast.name in out
    assert main(["embedder", "build"]) == 0
    assert "already built" in capsys.readouterr().out


def test_bad_static_folder_is_a_clear_error(tmp_path, small_dir):
    with pytest.raises(ScopeError, match="cannot load a static embedding model"):
        StaticEmbedder(tmp_path)
    from safetensors.numpy import save_file

    broken = tmp_path / "broken"
    shutil.copytree(small_dir, broken)
    save_file({"embeddings": np.zeros((10, 48), np.float16)}, str(broken / MODEL_FILE))  # rows != vocabulary
    with pytest.raises(ScopeError, match="inconsistent"):
        StaticEmbedder(broken)


def test_distill_needs_a_readable_teacher(tmp_path):
    from scope_shared.embedders.distill import distill_static

    with pytest.raises(ScopeError, match="teacher"):
        distill_static(tmp_path / "nothing", tmp_path / "out", DistillConfig(pca_dims=8, vocab_size=64))
    with pytest.raises(ScopeError, match="vocab_size"):
        DistillConfig(pca_dims=256, vocab_size=100)
    assert default_model_path()


def test_a_finished_folder_is_kept_unless_replaced(tmp_path, small_dir):
    from scope_shared.embedders.distill import write_static_model

    out = tmp_path / "model"
    shutil.copytree(small_dir, out)
    tokenizer = json.loads((small_dir / TOKENIZER_FILE).read_text())
    other = np.ones((3002, 48), np.float32)
    write_static_model(out, other, tokenizer, "t", {"pca_dims": 48})  # e.g. a second builder, finished later
    assert not np.allclose(StaticEmbedder(out)._table, 1.0)
    write_static_model(out, other, tokenizer, "t", {"pca_dims": 48}, replace=True)  # scope embedder build --force
    assert np.allclose(StaticEmbedder(out)._table, 1.0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_langchain_router_selects_fast_by_name(as_fast):
    from fixtures_langchain import no_tools_chat
    from langchain_scope import SCOPERouter

    history = _toy_routing_table().to_history("fast", show_progress=False)
    chat = SCOPERouter(candidates={c.name: no_tools_chat(c.name) for c in CARDS}, cards=CARDS, history=history,
                       embedder="fast")
    assert chat.router.embedder is as_fast
    out = chat.invoke("a trivia question about rivers")
    assert out.response_metadata["model_name"] in {c.name for c in CARDS}
