"""Which optional extra provides what, a clear error when one is missing, and names loaded on first use.

The core (``scope_shared``) needs neither LangChain nor LlamaIndex: ``pip install scope-router`` gets
the router, and ``scope-router[langchain]`` / ``scope-router[llamaindex]`` add one integration's
framework. An integration imported without its framework raises `MissingExtraError` naming the
extra to install, instead of a bare ``ModuleNotFoundError`` from deep inside it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

#: the packages each extra brings (what the integrations import)
EXTRAS = {"langchain": ("langchain_core",), "llamaindex": ("llama_index.core",)}


class MissingExtraError(ModuleNotFoundError):
    """A part of the library was imported without the optional dependency it is built on."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a namespace without the child
        return False


def require_extra(extra: str, what: str) -> None:
    """Raise `MissingExtraError` unless every package of ``extra`` is importable."""
    missing = [m for m in EXTRAS[extra] if not _installed(m)]
    if missing:
        raise MissingExtraError(
            f"{what} needs {', '.join(missing)}, which is not installed: pip install 'scope-router[{extra}]'",
            name=missing[0],
        )


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``where`` (name -> module)
    on first use: what sits on a higher floor, or pulls heavy dependencies, stays out of ``import``."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
