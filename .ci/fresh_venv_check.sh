#!/usr/bin/env bash
# Fresh-install check (CI): install the package with ONE framework's extra into a new virtual
# environment, from the package index, and run that framework's README/docs examples against it.
#   .ci/fresh_venv_check.sh langchain|llamaindex
# Checks: the other framework is not installed and its integration fails with an error naming its
# extra; the examples of this framework (and the framework-free ones) run as written; prints the
# environment's size. TORCH_PIP_ARGS picks a torch CPU wheel index where the default one has none.
set -euo pipefail
framework="${1:?usage: $0 langchain|llamaindex}"
case "$framework" in
  langchain) other=llamaindex; other_module=llamaindex_scope ;;
  llamaindex) other=langchain; other_module=langchain_scope ;;
  *) echo "unknown framework $framework" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet ${TORCH_PIP_ARGS:-} "${TORCH_SPEC:-torch==2.13.0}"
# a copy of the source, so the build leaves nothing in the checkout
mkdir "$work/src" && (cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -c) | tar -x -C "$work/src"
"$venv/bin/python" -m pip install --quiet "$work/src[$framework]"
echo "installed scope-router[$framework]: $(du -sh "$venv" | cut -f1) in the virtual environment"
"$venv/bin/python" -m pip install --quiet "pytest>=8" "pytest-asyncio>=0.23"
cd "$work"
"$venv/bin/python" - "$other" "$other_module" <<'PY'
import importlib, sys
other, module = sys.argv[1], sys.argv[2]
framework_module = {"langchain": "langchain_core", "llamaindex": "llama_index.core"}[other]
try:
    importlib.import_module(framework_module)
except ImportError:
    pass
else:
    raise SystemExit(f"{framework_module} is installed, but only the other framework's extra was asked for")
try:
    importlib.import_module(module)
except ImportError as exc:
    assert f"scope-router[{other}]" in str(exc), exc
    print(f"import {module} without its framework: {exc}")
else:
    raise SystemExit(f"{module} imported without its framework")
import scope_shared  # the core needs neither framework
PY
# the examples, run by the installed package (the test file runs each block in a fresh interpreter)
SCOPE_DOC_FRAMEWORK="$framework" "$venv/bin/pytest" -q -p no:cacheprovider --rootdir "$work" \
  -o "testpaths=" --confcutdir "$root/tests" "$root/tests/docs/test_docs_examples.py" -k "runs_as_written or exempt"
