"""Where the bundled real data sets live: ``$SCOPE_DATA_DIR``, else a ``shared/data`` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

from scope_shared.errors import DataSetError


def data_dir() -> Path:
    """The folder holding ``llmrouter-9/``, ``routerbench-11/`` etc."""
    env = os.environ.get("SCOPE_DATA_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        for cand in (base / "shared" / "data", base / ".." / "shared" / "data"):
            if (cand / "llmrouter-9").is_dir():
                return cand.resolve()
    raise DataSetError(
        "real data not found: set SCOPE_DATA_DIR to the folder holding llmrouter-9/ "
        "(in this repository's layout it is ../shared/data)"
    )


def dataset_path(name: str) -> Path:
    """Path of one bundled data set, with a clear error if absent."""
    p = data_dir() / name
    if not p.is_dir():
        raise DataSetError(f"data set {name!r} not found under {data_dir()}")
    return p
