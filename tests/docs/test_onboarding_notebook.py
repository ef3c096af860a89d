"""The onboarding notebook runs top to bottom (nbclient, the test interpreter's kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "onboarding.ipynb"


def test_onboarding_notebook_executes():
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    nb = nbformat.read(NOTEBOOK, as_version=4)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name=NATIVE_KERNEL_NAME, resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "Onboarding report: small-llm" in text and "Onboarding report: large-llm" in text
    assert "expected spend $" in text and "calls made: 0, read back from the log: 50" in text
    assert "tradeoff=    0.0" in text and "always large-llm" in text
    assert "the default (accuracy_margin=" in text and "the best single model (" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the accuracy-cost plot
