"""Tool arguments and JSON answers filled in from a JSON schema's types, the way a scripted model would.

Values come from the request where its text has one of the right type (the first integer for an
integer, the first quoted phrase for a string), so a scripted model asked "What is
magic_function(3)?" calls ``magic_function(input=3)``; otherwise a plain value of the type.
"""

from __future__ import annotations

import re
from typing import Any

_INT = re.compile(r"(?<![\w.])-?\d+(?![\w.])")
_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_QUOTED = re.compile(r"['\"“‘]([^'\"”’]+)['\"”’]")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {})
        return _resolve(node, root)
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if o.get("type") != "null"]
        if options:
            return _resolve(options[0], root)
    return schema


def fill(schema: dict[str, Any], text: str, root: dict[str, Any] | None = None, name: str = "") -> Any:
    """A value for ``schema`` (resolving ``$ref``/``anyOf``), taken from ``text`` where it can be."""
    root = root or schema
    schema = _resolve(schema, root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: fill(v, text, root, k) for k, v in props.items()}
    if kind == "array":
        return [fill(schema.get("items", {}), text, root, name)]
    if kind == "integer":
        m = _INT.search(text)
        return int(m.group()) if m else 1
    if kind == "number":
        m = _NUM.search(text)
        return float(m.group()) if m else 1.0
    if kind == "boolean":
        return True
    m = _QUOTED.search(text)
    return m.group(1) if m else f"{name or 'value'} for: {text[:60]}"
