#!/usr/bin/env bash
# Disk size of a fresh virtual environment after `pip install '.[langchain]'` and `'.[llamaindex]'`,
# for a baseline revision (default main) and this checkout: torch's CPU wheel first (TORCH_SPEC,
# TORCH_PIP_ARGS as in the Makefile), then the package with one extra. Prints MB and writes
# benchmarks/results/install_size_<tree>.json (TREES="before after" by default; run them apart to
# measure in parallel).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
baseline="${1:-main}"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/before" "$work/after"
git -C "$root" archive "$baseline" | tar -x -C "$work/before"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -c) | tar -x -C "$work/after"
declare -A size
for tree in ${TREES:-before after}; do
  for extra in langchain llamaindex; do
    venv="$work/venv-$tree-$extra"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip 2>/dev/null
    "$venv/bin/python" -m pip install --quiet ${TORCH_PIP_ARGS:-} "${TORCH_SPEC:-torch==2.13.0}" 2>/dev/null
    "$venv/bin/python" -m pip install --quiet "$work/$tree[$extra]" 2>/dev/null
    mb=$(( $(du -sb "$venv" | cut -f1) / 1000000 ))
    size[$tree-$extra]=$mb
    has=$("$venv/bin/python" -c "import importlib.util as u; print(','.join(m for m in ('langchain_core','langchain','langgraph','llama_index.core','nltk','sqlalchemy') if u.find_spec(m.split('.')[0]) and (m != 'llama_index.core' or u.find_spec('llama_index') and u.find_spec('llama_index.core'))))")
    echo "$tree [$extra]: ${mb} MB  (frameworks present: $has)"
    rm -rf "$venv"
  done
done
for tree in ${TREES:-before after}; do
  cat > "$root/benchmarks/results/install_size_$tree.json" <<JSON
{"tree": "$tree", "baseline": "$baseline", "unit": "MB (10^6 bytes) of the virtual environment, torch CPU wheel included",
 "langchain": ${size[$tree-langchain]}, "llamaindex": ${size[$tree-llamaindex]}}
JSON
  echo "$tree: langchain ${size[$tree-langchain]} MB, llamaindex ${size[$tree-llamaindex]} MB"
done
