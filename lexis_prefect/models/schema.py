"""Self-contained JSON schemas: every local ``$ref`` inlined.

A schema embedded as one property of a larger one (an Airflow ``Param``, a Prefect flow's
parameter schema) cannot keep ``#/$defs/...`` references: they would point at the wrong document
root. Recursive definitions cannot be inlined and are refused by name.
"""

from __future__ import annotations

from typing import Any

_DEF_KEYS = ("$defs", "definitions")


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without its ``$defs``/``definitions``, each local reference replaced by its target."""
    schema = dict(schema)
    defs: dict[str, Any] = {}
    for key in _DEF_KEYS:
        for name, target in (schema.pop(key, None) or {}).items():
            defs[f"#/{key}/{name}"] = target
    return _inline(schema, defs, ())


def _inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in defs:
        if ref in seen:
            raise ValueError(f"the schema is recursive ({' -> '.join((*seen, ref))}); it cannot be inlined")
        merged = {**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs, (*seen, ref))
    return {key: _inline(value, defs, seen) for key, value in node.items()}
