"""The LangChain quickstart notebook runs top to bottom (nbclient, the test interpreter's kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "langchain_quickstart.ipynb"


def test_quickstart_notebook_executes():
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    nb = nbformat.read(NOTEBOOK, as_version=4)
    env_path = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    os.environ["PYTHONPATH"] = env_path  # the kernel inherits it: import this checkout's packages
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name=NATIVE_KERNEL_NAME, resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "-> [strong]" in outputs and "-> [cheap]" in outputs
    assert "spent $" in outputs and "steps routed to ['strong', 'strong']" in outputs
    assert "same decision for all three prompts: cheap" in outputs
    assert "after correcting the feedback:" in outputs
