"""The plan's JSON Schema, with each task kind's params attached (for editors)."""

from __future__ import annotations

from typing import Any

from maintd.plan.models import Plan
from maintd.registry import Registry


def json_schema(registry: Registry) -> dict[str, Any]:
    schema = Plan.model_json_schema()
    defs = schema.setdefault("$defs", {})
    rules = []
    for kind in registry:
        name = f"params.{kind.name}"
        kind_schema = kind.config.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(kind_schema.pop("$defs", {}))
        defs[name] = kind_schema
        rules.append(
            {
                "if": {"properties": {"kind": {"const": kind.name}}, "required": ["kind"]},
                "then": {"properties": {"params": {"$ref": f"#/$defs/{name}"}}},
            }
        )
    task = defs["Task"]
    task["properties"]["kind"]["enum"] = registry.names()
    task["allOf"] = rules
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "maintd plan"
    return schema
