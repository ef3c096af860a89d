"""Modules keep to public faces: no module reaches into another object's private names, and no
module of an integration imports another in a circle (type-only imports included).

Parsed with ``ast`` (nothing is imported). ``self._x`` / ``cls._x`` / ``super()._x`` are an
object's own business; anything else named ``_x`` belongs to someone else. The exceptions are
LlamaIndex's own protocol between an LLM wrapper and the LLM it wraps (listed below). In the core,
a module may also read the private names it defines itself (two classes of one module working
together); what is left is a short list of protocols between two core modules, named below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("langchain_scope", "llamaindex_scope")
#: private names a framework asks wrappers to call on the model they wrap
FRAMEWORK_PROTOCOL = {"_prepare_chat_with_tools_compat", "_validate_chat_with_tools_response"}
#: core modules allowed one private name of another module, and why (each a candidate to go)
CORE_ALLOWED = {
    ("scope_shared/budget/levels.py", "_open_hold"): "the ledger implementers' protocol (budget/base.py)",
    ("scope_shared/budget/levels.py", "_close_hold"): "the ledger implementers' protocol (budget/base.py)",
    ("scope_shared/budget/levels.py", "_record"): "the ledger implementers' protocol (budget/base.py)",
    ("scope_shared/budget/reservation.py", "_close_hold"): "the ledger implementers' protocol (budget/base.py)",
    ("scope_shared/history/feedback_log.py", "_add_unlogged"): "replaying the log into a history without logging it again",
    ("scope_shared/history/store.py", "_saved_as"): "the store's record of which save a history holds",
    ("scope_shared/history/postgres_transfer.py", "_session"): "cleaning up the shared history a failed import made",
    ("scope_shared/onboarding/graders/sandbox_child.py", "_exit"): "os._exit, the standard library's",
}


def _own(node: ast.expr) -> bool:
    if isinstance(node, ast.Name) and node.id in ("self", "cls"):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def defined_privates(tree: ast.Module) -> set[str]:
    """The private names a module defines: its functions and classes, the attributes it assigns on
    ``self``, and its ``__slots__``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _own(node.value):
            names.add(node.attr)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
            names.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return {n for n in names if n.startswith("_")}


def private_reaches(path: Path, own_module: bool = False) -> list[str]:
    """``line: expr._name`` for each private name of another object read in ``path`` (with
    ``own_module``, names that ``path`` defines itself are its own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = defined_privates(tree) if own_module else set()
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")) or name in FRAMEWORK_PROTOCOL:
            continue
        if not _own(node.value) and name not in own:
            out.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}: {ast.unparse(node)}")
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


def test_no_core_module_reaches_into_another_modules_private_names():
    reaches = [r for path in sorted((ROOT / "scope_shared").rglob("*.py")) for r in private_reaches(path, own_module=True)]
    left = [r for r in reaches if (r.split(":")[0], r.rsplit(".", 1)[-1]) not in CORE_ALLOWED]
    assert left == []
    used = {(r.split(":")[0], r.rsplit(".", 1)[-1]) for r in reaches}
    assert set(CORE_ALLOWED) <= used, f"no longer needed, drop from CORE_ALLOWED: {sorted(set(CORE_ALLOWED) - used)}"


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
