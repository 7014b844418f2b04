"""The OpenAPI 3.1 document: one request schema per model, ``QueueState``, the error."""

from __future__ import annotations

import copy
import re
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
        doc["paths"] = _paths_per_model(doc.get("paths", {}))
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]


_GENERIC = re.compile(r"^(?P<base>.*/generation(?:/sse)?)/\{route\}$")


def _paths_per_model(paths: dict[str, Any]) -> dict[str, Any]:
    """Spell the generic create routes out once per served model.

    The router takes any ``{provider}/{model}``, but each model has its own request body;
    one concrete path per model (``/generation/kling-ai/kling-v2.6``) gives clients and
    generated SDKs the exact schema for each, where a generic path could only offer a union.
    """
    out: dict[str, Any] = {}
    for path, operations in paths.items():
        match = _GENERIC.match(path)
        if match is None:
            out[path] = operations
            continue
        for spec in REGISTRY.values():
            concrete = copy.deepcopy(operations)
            for method, operation in concrete.items():
                operation["parameters"] = [
                    p for p in operation.get("parameters", []) if p.get("name") != "route"
                ]
                slug = re.sub(r"[^A-Za-z0-9]+", "_", spec.route)
                operation["operationId"] = f"{operation.get('operationId', method)}_{slug}"
                operation["summary"] = f"{operation.get('summary', '')} ({spec.route})".strip()
                ref = {"$ref": f"#/components/schemas/{spec.schema.__name__}"}
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    media["schema"] = ref
            out[f"{match['base']}/{spec.route}"] = concrete
    return out
