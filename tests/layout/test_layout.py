"""The layout holds: the core does not depend on the frameworks, and the integrations stay apart.

Parsed with ``ast`` (nothing is imported), over every ``.py`` file of each package:

- ``scope_shared`` (the core) never imports ``langchain_scope`` or ``llamaindex_scope``, anywhere;
  it imports the framework packages (``langchain*``, ``langgraph``, ``langsmith``, ``llama_index``)
  only inside functions, where a caller hands it a framework object (the onboarding clients, the
  reasoning estimator's LangChain backend): never when the module is imported. An
  ``if TYPE_CHECKING:`` block does not run, so it is allowed.
- ``langchain_scope`` never imports ``llamaindex_scope`` or LlamaIndex; ``llamaindex_scope`` (and
  the ``llama_index.*.scope`` namespace packages over it) never import ``langchain_scope`` or
  LangChain, at any depth.

- inside ``scope_shared``, each floor of docs/design.md's Layout imports only its own floor and the
  floors below it, also inside functions (only ``if TYPE_CHECKING:`` hints may look up); a new
  top-level module or package of the core must be given its floor in ``FLOORS``.

``importlib.import_module("...")`` / ``__import__("...")`` with a literal name count as imports.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = "scope_shared"
INTEGRATIONS = {"langchain_scope": "langchain", "llamaindex_scope": "llamaindex"}
#: the core's floors (docs/design.md, Layout): a module imports only from its floor and those below
FLOORS: dict[str, int] = {
    **dict.fromkeys(
        ("errors", "atomic", "tokens", "embedders", "cards", "query", "metrics", "arguments", "progress", "extras",
         "live", "postgres"),
        0,
    ),
    "history": 1,
    "estimators": 2,
    "routing": 3,
    "budget": 4,
    "calls": 5,
    **dict.fromkeys(("onboarding", "data"), 6),
    "evaluation": 7,
    "cli": 8,
    "testing": 8,
}


@dataclass(frozen=True)
class Import:
    """One import statement (or literal dynamic import) found in a file."""

    module: str  # the absolute dotted name imported from
    line: int
    in_function: bool  # inside a def/lambda: runs only when called
    type_only: bool  # inside ``if TYPE_CHECKING:``: never runs

    @property
    def top(self) -> str:
        return self.module.split(".")[0]


def family(top: str) -> str | None:
    """Which side a top-level package belongs to: ``core``, ``langchain`` or ``llamaindex``."""
    if top == CORE:
        return "core"
    if top == "langchain_scope" or top.startswith(("langchain", "langgraph", "langsmith")):
        return "langchain"
    if top == "llamaindex_scope" or top.startswith("llama_index"):
        return "llamaindex"
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(source: str, package: str = "") -> list[Import]:
    """Every import in ``source`` (a module of ``package``, for relative imports), with where it sits."""
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, node.lineno, in_function, type_only) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append(Import(_resolve(node, package), node.lineno, in_function, type_only))
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
            arg = node.args[0] if node.args else None
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append(Import(arg.value, node.lineno, in_function, type_only))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:
                visit(child, in_function, type_only)
            return
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_only)

    visit(ast.parse(source), False, False)
    return found


def _files(*tops: str) -> list[Path]:
    files = [p for top in tops for p in sorted((ROOT / top).rglob("*.py"))]
    assert files, f"no Python files under {tops}"
    return files


def _package(path: Path) -> str:
    """The package a file's relative imports start from (its folder, for ``__init__.py`` too)."""
    return ".".join(path.relative_to(ROOT).parts[:-1])


def _file_imports(path: Path) -> list[Import]:
    return imports_of(path.read_text(encoding="utf-8"), _package(path))


def core_violations(imports: list[Import]) -> list[str]:
    """What the core may not import: an integration anywhere, a framework where it runs on import."""
    bad = []
    for imp in imports:
        side = family(imp.top)
        if imp.top in INTEGRATIONS and not imp.type_only:
            bad.append(f"line {imp.line}: imports the integration {imp.module}")
        elif side in ("langchain", "llamaindex") and not imp.in_function and not imp.type_only:
            bad.append(f"line {imp.line}: imports {imp.module} when the module is imported")
    return bad


def integration_violations(imports: list[Import], side: str) -> list[str]:
    """What an integration may not import: the other integration or the other framework."""
    return [
        f"line {imp.line}: imports {imp.module} ({family(imp.top)} side)"
        for imp in imports
        if family(imp.top) not in (None, "core", side)
    ]


def floor_of(module: str) -> int | None:
    """The floor of a core module (``scope_shared.history.store`` -> 1); None outside the core or for
    the package itself (its ``__init__`` is the public face over every floor)."""
    parts = module.split(".")
    if parts[0] != CORE or len(parts) < 2:
        return None
    if parts[1] not in FLOORS:
        raise AssertionError(f"{CORE}.{parts[1]} has no floor: give it one in FLOORS (tests/layout/test_layout.py) and docs/design.md")
    return FLOORS[parts[1]]


def upward_imports(module: str, imports: list[Import]) -> list[str]:
    """Imports of ``module`` that reach a higher floor of the core (type-only hints aside)."""
    own = floor_of(module)
    if own is None:
        return []
    return [
        f"line {imp.line}: {module} (floor {own}) imports {imp.module} (floor {floor_of(imp.module)})"
        for imp in imports
        if not imp.type_only and (floor_of(imp.module) or 0) > own
    ]


# ---------------------------------------------------------------- the repository


def test_the_core_does_not_depend_on_frameworks_or_integrations():
    problems = {
        str(p.relative_to(ROOT)): v for p in _files(CORE) if (v := core_violations(_file_imports(p)))
    }
    assert not problems, f"the core imports framework code it may not: {problems}"


def test_the_cores_optional_framework_imports_are_seen_and_lazy():
    """The checker does see the core's real framework imports (so the test above is not vacuous):
    the onboarding clients take LangChain and LlamaIndex models, importing them inside functions."""
    clients = [
        i for i in _file_imports(ROOT / "scope_shared/onboarding/clients.py") if family(i.top) in ("langchain", "llamaindex")
    ]
    assert {family(i.top) for i in clients} == {"langchain", "llamaindex"}
    assert all(i.in_function for i in clients)


def test_no_core_module_imports_a_floor_above_its_own():
    problems = []
    for path in _files(CORE):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if path.name == "__init__.py" else parts)
        problems += upward_imports(module, _file_imports(path))
    assert not problems, "upward imports:\n" + "\n".join(problems)


@pytest.mark.parametrize(("top", "side"), [*INTEGRATIONS.items(), ("llama_index", "llamaindex")])
def test_integrations_do_not_import_each_other(top, side):
    problems = {
        str(p.relative_to(ROOT)): v for p in _files(top) if (v := integration_violations(_file_imports(p), side))
    }
    assert not problems, f"{top} reaches into the other integration: {problems}"


# ---------------------------------------------------------------- the checker itself


def test_a_module_level_framework_import_in_the_core_is_caught():
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import numpy as np\n"
        "if TYPE_CHECKING:\n"
        "    from langchain_core.messages import BaseMessage\n"
        "def call(model):\n"
        "    from langchain_core.messages import HumanMessage\n"
        "    return model.invoke([HumanMessage('hi')])\n"
    )
    assert core_violations(imports_of(source, "scope_shared.onboarding")) == []
    for added in (
        "from langchain_core.messages import AIMessage\n",
        "import llama_index.core\n",
        "try:\n    import langgraph\nexcept ImportError:\n    pass\n",
        "class A:\n    from llama_index.core.llms import LLM\n",
        "import importlib\nMOD = importlib.import_module('langchain_core.messages')\n",
    ):
        assert core_violations(imports_of(source + added, "scope_shared.onboarding")), added
    lazy_integration = source + "def f():\n    from langchain_scope import SCOPERouter\n"
    assert core_violations(imports_of(lazy_integration, "scope_shared.onboarding"))


def test_a_cross_integration_import_is_caught():
    assert integration_violations(imports_of("from llamaindex_scope.routing_text import turns_of\n"), "langchain")
    assert integration_violations(imports_of("def f():\n    import langchain_core\n"), "llamaindex")
    assert integration_violations(imports_of("from ..budget import x\n", "llamaindex_scope.sub"), "llamaindex") == []
    assert integration_violations(imports_of("from scope_shared.calls import Usage\n"), "langchain") == []


def test_an_upward_import_is_caught_even_inside_a_function():
    source = "from scope_shared.history import History\ndef f():\n    from scope_shared.evaluation import auroc\n"
    assert upward_imports("scope_shared.estimators.calibration", imports_of(source, "scope_shared.estimators")) == [
        "line 3: scope_shared.estimators.calibration (floor 2) imports scope_shared.evaluation (floor 7)"
    ]
    hint = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from scope_shared.budget.base import BudgetView\n"
    assert upward_imports("scope_shared.routing.router", imports_of(hint, "scope_shared.routing")) == []
    with pytest.raises(AssertionError, match="no floor"):
        floor_of("scope_shared.brand_new")
