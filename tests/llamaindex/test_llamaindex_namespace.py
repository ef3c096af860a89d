"""The classes are also found under LlamaIndex's integration namespaces, without shadowing llama_index.core."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tomllib
from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[2]


def test_namespace_dirs_have_no_init():
    for d in ("llama_index", "llama_index/llms", "llama_index/selectors", "llama_index/embeddings"):
        assert (ROOT / d).is_dir() and not (ROOT / d / "__init__.py").exists(), d


def test_core_and_integration_import_together_in_a_fresh_interpreter():
    code = (
        "import llama_index.core, llama_index.llms.scope as l, llama_index.selectors.scope as s, "
        "llama_index.embeddings.scope as e, llamaindex_scope as p\n"
        "from llama_index.core.llms import MockLLM\n"
        "assert l.SCOPELLM is p.SCOPELLM and s.SCOPESelector is p.SCOPESelector and e.SCOPEEmbedding is p.SCOPEEmbedding\n"
        "print(llama_index.core.__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    core_file = Path(out.stdout.strip())
    assert (ROOT / "llama_index") not in core_file.parents  # the installed llama_index.core, not a shadow


def test_pyproject_package_find_includes_the_namespace_packages():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    # pyproject's find defaults to namespaces=True, i.e. find_namespace_packages
    assert conf.get("namespaces", True) is True
    found = set(find_namespace_packages(where=str(ROOT), include=conf["include"]))
    assert {"llama_index.llms.scope", "llama_index.selectors.scope", "llama_index.embeddings.scope"} <= found
    assert {"llamaindex_scope", "scope_shared"} <= found
    assert "llama_index.core" not in found
