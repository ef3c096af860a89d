"""The LlamaIndex quickstart notebook runs top to bottom (its cells assert the routing they show)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "llamaindex_quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs(monkeypatch):
    # the kernel imports this checkout (not another installed copy) and never touches the network
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "A: [small-llm]" in text and "A: [large-llm]" in text
    assert "reported by the LLM" in text and "history: 24 -> 25 questions" in text
    assert "LLM calls, routed on: ['Explain step by step why routing on anchors" in text
