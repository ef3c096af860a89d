"""The integrations keep to public faces: no module reaches into another object's private names,
and no module of an integration imports another in a circle (type-only imports included).

Parsed with ``ast`` (nothing is imported). ``self._x`` / ``cls._x`` / ``super()._x`` are an
object's own business; anything else named ``_x`` belongs to someone else. The exceptions are
LlamaIndex's own protocol between an LLM wrapper and the LLM it wraps (listed below).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("langchain_scope", "llamaindex_scope")
#: private names a framework asks wrappers to call on the model they wrap
FRAMEWORK_PROTOCOL = {"_prepare_chat_with_tools_compat", "_validate_chat_with_tools_response"}


def _own(node: ast.expr) -> bool:
    if isinstance(node, ast.Name) and node.id in ("self", "cls"):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def private_reaches(path: Path) -> list[str]:
    """``line: expr._name`` for each private name of another object read in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")) or name in FRAMEWORK_PROTOCOL:
            continue
        if not _own(node.value):
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return out


def imports_of(path: Path, package: str) -> set[str]:
    """The modules of ``package`` that ``path`` imports, at any depth (type-only included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package + "."):
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module == package:
            found.update(f"{package}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(package + "."))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_reaches_into_another_objects_private_names(package):
    reaches = [r for path in sorted((ROOT / package).glob("*.py")) for r in private_reaches(path)]
    assert reaches == []


@pytest.mark.parametrize("package", PACKAGES)
def test_an_integration_has_no_import_circle(package):
    modules = {f"{package}.{p.stem}": p for p in (ROOT / package).glob("*.py") if p.stem != "__init__"}
    graph = {m: {i for i in imports_of(p, package) if i in modules and i != m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def cycle_from(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*path[path.index(n):], n] if n in path else [m, n]
            if n not in state:
                found = cycle_from(n, [*path, n])
                if found:
                    return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = cycle_from(m, [m])
            assert found is None, " -> ".join(found)
