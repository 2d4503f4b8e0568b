"""The plan's JSON Schema, with each task kind's params attached (for editors)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from maintd.plan.models import Plan
from maintd.plan.types import format_duration
from maintd.registry import Registry


class _PlanSchema(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        # Defaults in the plan's own notation ("30s"), not ISO 8601, so they are valid input.
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def json_schema(registry: Registry) -> dict[str, Any]:
    schema = Plan.model_json_schema(schema_generator=_PlanSchema)
    defs = schema.setdefault("$defs", {})
    rules = []
    for kind in registry:
        name = f"params.{kind.name}"
        kind_schema = kind.config.model_json_schema(
            ref_template="#/$defs/{model}", schema_generator=_PlanSchema
        )
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
