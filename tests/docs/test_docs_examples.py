"""Every Python block in README.md and docs/*.md runs as written, offline, so the examples cannot rot.

Each block runs in a fresh interpreter, in an empty folder, with no network and no data folder: what a
newcomer pasting it would get. Where a real provider's model would go, the blocks use the documented
stand-ins (``scope_shared.testing``, ``langchain_scope.testing``, ``llamaindex_scope.testing``).

Two markers, an HTML comment on the line before a block, are honoured:
- ``<!-- example: needs postgres -->``: the block runs against a real PostgreSQL server this test
  starts, its ``postgresql://...`` URL replaced by the server's (skipped, saying why, where no server
  can be started);
- ``<!-- example: not run (REASON) -->``: the block needs what no test machine has (REASON says
  what); such blocks are counted, listed, and must stay few.

``SCOPE_DOC_FRAMEWORK=langchain|llamaindex`` runs only the blocks that do not need the other
framework (the fresh-install check installs one framework's extra and runs this).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*example:\s*(.*?)\s*-->\s*$")
NOT_RUN_LIMIT = 1


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    code: str
    mark: str

    @property
    def framework(self) -> str | None:
        if "llama_index" in self.code or "llamaindex_scope" in self.code:
            return "llamaindex"
        if "langchain" in self.code:
            return "langchain"
        return None

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def python_blocks() -> list[Block]:
    blocks = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if not m.group(1).startswith("py"):
                continue
            line = text.count("\n", 0, m.start()) + 1
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = MARK.search(before)
            blocks.append(Block(str(path.relative_to(ROOT)), line, m.group(2), mark.group(1) if mark else ""))
    return blocks


BLOCKS = python_blocks()
ONLY = os.environ.get("SCOPE_DOC_FRAMEWORK")


def _run(block: Block, cwd: Path, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SCOPE_DATA_DIR", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", SCOPE_QUIET="1",
               SCOPE_DATA_DIR=str(cwd / "no-data-folder"))
    if ONLY is None:  # this checkout's code; the fresh-install check runs the installed package instead
        env["PYTHONPATH"] = str(ROOT)
    else:
        env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-c", code or block.code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_docs_hold_python_examples_and_few_are_exempt():
    assert len(BLOCKS) >= 8, [str(b) for b in BLOCKS]
    exempt = [b for b in BLOCKS if b.mark.startswith("not run")]
    assert len(exempt) <= NOT_RUN_LIMIT, [f"{b}: {b.mark}" for b in exempt]
    assert all(re.match(r"not run \(.+\)", b.mark) for b in exempt), "say why a block is not run"


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.mark], ids=str)
def test_python_block_runs_as_written(block: Block, tmp_path: Path):
    if ONLY and block.framework not in (None, ONLY):
        pytest.skip(f"needs the {block.framework} extra; this run installs only {ONLY}")
    run = _run(block, tmp_path)
    assert run.returncode == 0, f"{block} failed:\n{block.code}\n--- stderr ---\n{run.stderr[-4000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mark == "needs postgres"], ids=str)
def test_postgres_block_runs_against_a_real_server(block: Block, tmp_path: Path, request):
    if ONLY:
        pytest.skip("the fresh-install check does not start a database server")
    url = request.getfixturevalue("pg_url")  # a real server this test session started (skips, saying why, if none)
    from scope_shared import load_pack
    from scope_shared.cli import main

    pack = load_pack()  # the block's comment: filled by `scope history import` (texts under the store's 2,704-byte key limit)
    short = [i for i, q in enumerate(pack.questions) if len(q.text.encode()) < 2000]
    pack.history(question_ids=short).save(tmp_path / "pack-history")
    assert main(["history", "import", str(tmp_path / "pack-history"), url]) == 0
    code = re.sub(r"postgresql://[^\"']+", url, block.code)
    run = _run(block, tmp_path, code)
    assert run.returncode == 0, f"{block} failed:\n{code}\n--- stderr ---\n{run.stderr[-4000:]}"


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_every_notebook_is_executed_by_a_test(notebook: Path):
    """The notebooks are run top to bottom by their own tests (``tests/docs/test_*_notebook.py``)."""
    runners = [t for t in (ROOT / "tests").rglob("test_*.py")
               if notebook.name in t.read_text(encoding="utf-8") and "ExecutePreprocessor" in t.read_text(encoding="utf-8")
               or notebook.name in t.read_text(encoding="utf-8") and "NotebookClient" in t.read_text(encoding="utf-8")]
    assert runners, f"no test executes {notebook.name}"
