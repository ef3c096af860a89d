"""The anchor pack: it loads offline without an embedder, is checksummed (a corrupt pack is refused
with a clear error), matches its source data, and users can build their own from labelled data;
an installed wheel carries it, so the demo runs with no data folder."""

from __future__ import annotations

import ast
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scope_shared import load_pack, onboard
from scope_shared.errors import AnchorPackError
from scope_shared.cli import main
from scope_shared.onboarding.graders import sandbox_support
from scope_shared.onboarding.pack import sha256_bytes
from scope_shared.onboarding.scripted import ScriptedAnswerer

ROOT = Path(__file__).resolve().parents[2]
PACK = load_pack()


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCOPE_DATA_DIR"}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_bundled_pack_loads_offline_without_an_embedder(tmp_path):
    code = ("import sys, scope_shared; p = scope_shared.load_pack(); h = p.history(); "
            "print(len(p), len(h), h.n_records, sorted(h.cards) == sorted(p.models), 'sentence_transformers' in sys.modules, 'torch' in sys.modules)")
    env = {**clean_env(), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    n, n_hist, n_records, cards_ok, st_loaded, torch_loaded = out.stdout.split()
    assert int(n) == int(n_hist) == 5989 and int(n_records) == int(np.isfinite(PACK.scores).sum())
    assert cards_ok == "True" and st_loaded == "False" and torch_loaded == "False"


def test_pack_size_licence_and_contents():
    size = sum(p.stat().st_size for p in PACK.path.iterdir())
    assert size <= 10 * 1024 * 1024
    assert "MIT License" in PACK.license_text and "U Lab @UIUC" in PACK.license_text
    assert PACK.embeddings.dtype == np.float16 and PACK.embeddings.shape == (5989, 384)
    assert np.allclose(np.linalg.norm(PACK.embeddings.astype(np.float32), axis=1), 1.0, atol=2e-3)
    info = PACK.info()
    assert len(info["benchmarks"]) == 14 and len(info["models"]) == 9
    assert set(info["metrics"]) == {"multiple_choice", "f1", "final_number", "math", "concept_coverage", "code"}
    for q in PACK.questions:  # every question carries what its grader needs
        if q.metric == "multiple_choice":
            assert q.reference in q.choices.labels
        elif q.metric == "code":
            assert q.tests and q.entry_point and f"{q.entry_point}" in q.tests
        else:
            assert q.reference
    with pytest.raises(ValueError):
        PACK.embeddings[0, 0] = 1  # shared and cached: read-only


def test_pack_matches_its_source_data():
    from scope_shared.data import dataset_path, load_llmrouter9
    from scope_shared.errors import ScopeError

    try:
        root = dataset_path("llmrouter-9")
    except ScopeError as exc:
        pytest.skip(f"the llmrouter-9 source data is not on this machine ({exc})")
    table = load_llmrouter9(root)
    assert [q.text for q in PACK.questions] == table.questions and PACK.benchmarks == table.benchmarks
    assert PACK.models == table.models
    assert np.allclose(PACK.scores, table.scores, equal_nan=True, atol=1e-6)
    assert {m: (c.input_price, c.output_price) for m, c in PACK.cards.items()} == {
        m: (c.input_price, c.output_price) for m, c in table.cards.items()}
    rows = {}
    for name in ("queries_train.jsonl", "queries_test.jsonl"):
        for line in filter(None, (root / name).read_text().split("\n")):  # not splitlines: texts hold U+2028
            r = json.loads(line)
            rows.setdefault((r["query"].strip(), r["task_name"]), r)
    for q in PACK.questions[::7]:
        r = rows[(q.text, q.benchmark)]
        if q.metric == "multiple_choice":
            assert q.reference == r["ground_truth"]
        elif q.metric == "final_number":
            assert r["ground_truth"].split("####")[-1].replace(",", "").strip() == q.reference
        elif q.metric == "math":
            assert q.reference in r["ground_truth"]
        elif q.metric == "code" and q.benchmark == "mbpp":
            assert [t.strip() for t in ast.literal_eval(r["ground_truth"])] == [t.strip() for t in q.tests.strip().split("\n")]


@pytest.mark.slow
def test_pack_embeddings_are_the_bundled_minilm_vectors():
    from scope_shared.embedders import default_embedder

    ids = list(range(0, len(PACK), 400))
    fresh = default_embedder().embed([PACK.questions[i].text for i in ids])
    cos = (fresh * PACK.vectors(ids)).sum(1)
    assert cos.min() > 0.999


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "pack"
    shutil.copytree(PACK.path, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


def test_a_corrupt_or_foreign_pack_is_refused_clearly(tmp_path):
    pack = _copy(tmp_path)
    assert load_pack(pack).name == "llmrouter-9"
    data = bytearray((pack / "embeddings.npy").read_bytes())
    data[-10] ^= 0xFF
    (pack / "embeddings.npy").write_bytes(bytes(data))
    with pytest.raises(AnchorPackError, match="checksum mismatch in embeddings.npy"):
        load_pack(pack)
    pack = _copy(tmp_path / "b")
    (pack / "scores.npy").unlink()
    with pytest.raises(AnchorPackError, match="scores.npy is missing"):
        load_pack(pack)
    pack = _copy(tmp_path / "c")
    manifest = json.loads((pack / "pack.json").read_text())
    (pack / "pack.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(AnchorPackError, match="format version 99"):
        load_pack(pack)
    (pack / "pack.json").write_text("{not json")
    with pytest.raises(AnchorPackError, match="unreadable pack.json"):
        load_pack(pack)
    with pytest.raises(AnchorPackError, match="is not an anchor pack"):
        load_pack(tmp_path)
    with pytest.raises(AnchorPackError, match="does not exist"):
        load_pack(tmp_path / "nowhere")
    # a question that lies about its metric, with a matching checksum: still refused, by name
    pack = _copy(tmp_path / "d")
    lines = gzip.decompress((pack / "questions.jsonl.gz").read_bytes()).decode().rstrip("\n").split("\n")
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "metric": "multiple_choice", "choices": None})
    blob = gzip.compress(("\n".join(lines) + "\n").encode())
    (pack / "questions.jsonl.gz").write_bytes(blob)
    manifest = json.loads((pack / "pack.json").read_text())
    manifest["sha256"]["questions"] = sha256_bytes(blob)
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(AnchorPackError, match="question #0: a multiple-choice question needs choices"):
        load_pack(pack)
    assert main(["pack", "info", str(tmp_path / "nowhere")]) == 2


USER_QUESTIONS = [
    {"text": "Which gas do plants absorb from the air?", "benchmark": "science", "metric": "em_mc", "reference": "B",
     "choices": ["oxygen", "carbon dioxide", "helium"]},
    {"text": "Which of these is a prime number?", "benchmark": "science", "metric": "multiple_choice", "reference": "2",
     "choices": {"labels": ["1", "2", "3"], "texts": ["4", "7", "9"]}},
    {"text": "What is the capital of Australia?", "benchmark": "geo", "metric": "f1_score", "reference": "Canberra"},
    {"text": "A shop sells 12 apples a day for 5 days. How many apples?", "benchmark": "arith", "metric": "GSM8K", "reference": "60"},
    {"text": "Simplify 6/8.", "benchmark": "arith", "metric": "math", "reference": "\\frac{3}{4}"},
    {"text": "dog, ball, park", "benchmark": "writing", "metric": "concept_coverage", "reference": "dog, ball, park"},
    {"text": "Write a function add(a, b) that returns their sum.", "benchmark": "code", "metric": "code",
     "tests": "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n", "entry_point": "add"},
]


def test_users_build_a_pack_from_their_labelled_data_and_onboard_on_it(tmp_path, capsys):
    qfile, rows, prices, lic = tmp_path / "questions.jsonl", tmp_path / "rows.jsonl", tmp_path / "prices.json", tmp_path / "LICENSE"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in USER_QUESTIONS))
    rows.write_text("".join(json.dumps({"question": q["text"], "model": m, "score": s, "output_tokens": 30, "benchmark": q["benchmark"]}) + "\n"
                            for q in USER_QUESTIONS for m, s in (("ours-small", 0.0), ("ours-big", 1.0))))
    prices.write_text(json.dumps({"ours-small": {"input_price": 0.1, "output_price": 0.1}, "ours-big": {"input_price": 3, "output_price": 9}}))
    lic.write_text("CC0: no rights reserved\n")
    out = tmp_path / "mypack"
    assert main(["pack", "build", "--questions", str(qfile), "--table", str(rows), "--models", str(prices),
                 "--out", str(out), "--license", str(lic), "--name", "mine", "--source", "our eval set"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["questions"] == 7  # scope pack build ends with pack info
    pack = load_pack(out)
    assert len(pack) == 7 and pack.models == ["ours-big", "ours-small"] and pack.license_text.startswith("CC0")
    assert pack.output_tokens is not None and np.nanmax(pack.output_tokens) == 30
    assert [q.metric for q in pack.questions] == ["multiple_choice", "multiple_choice", "f1", "final_number", "math", "concept_coverage", "code"]
    run_code = sandbox_support()[0]
    model = ScriptedAnswerer("newcomer", 1.0, pack)
    res = onboard(model, {"name": "newcomer", "input_price": 1, "output_price": 1}, pack=pack, n_anchors=7,
                  run_code=run_code, show_progress=False)
    assert res.report.graded == (7 if run_code else 6) and res.accuracy == 1.0
    assert res.history.n_outcomes("newcomer") == res.report.graded and len(res.history) == 7
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x?", "benchmark": "b", "metric": "bleu", "reference": "y"}) + "\n")
    assert main(["pack", "build", "--questions", str(bad), "--out", str(tmp_path / "badpack")]) == 2
    assert "unknown metric 'bleu'" in capsys.readouterr().err


@pytest.mark.slow
def test_an_installed_wheel_carries_the_pack_and_runs_the_demo_without_data(tmp_path):
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools (in the test extra)")
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir)],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheel_dir.glob("*.whl"))
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-2000:]
    assert (target / "scope_shared" / "onboarding" / "packs" / "llmrouter-9" / "LICENSE").is_file()
    env = {**clean_env(), "PYTHONPATH": str(target)}  # the installed copy only, no checkout, no SCOPE_DATA_DIR
    demo = subprocess.run([sys.executable, "-m", "scope_shared.cli", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "llmrouter-9: 5989 unique questions" in demo.stdout and "best single model" in demo.stdout
    assert str(target) in subprocess.run([sys.executable, "-c", "import scope_shared; print(scope_shared.__file__)"],
                                         cwd=tmp_path, env=env, capture_output=True, text=True).stdout
