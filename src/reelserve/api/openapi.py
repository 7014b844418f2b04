"""The OpenAPI 3.1 document: one request schema per model, ``QueueState``, the error."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from reelserve.core.status import Status
from reelserve.models.registry import REGISTRY

ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["error", "code", "message"],
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
}


def install(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for spec in REGISTRY.values():
            schema = spec.schema.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[spec.schema.__name__] = schema
        schemas["QueueState"] = {"type": "string", "enum": [s.value for s in Status]}
        schemas["Error"] = ERROR_SCHEMA
        for path, operations in doc.get("paths", {}).items():
            if not path.startswith("/api/v1/generation/{route}") and "sse/{route}" not in path:
                continue
            body = operations.get("post", {}).get("requestBody")
            if body:
                one_of = [
                    {"$ref": f"#/components/schemas/{spec.schema.__name__}"}
                    for spec in REGISTRY.values()
                ]
                for media in body["content"].values():
                    media["schema"] = {"oneOf": one_of}
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]
