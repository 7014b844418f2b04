"""Turn pydantic validation errors into one InvalidInput that names the field and the rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reelserve.core.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


def _rule(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} characters"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be an integer"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("string_type",):
        return "must be a string"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return str(error.get("msg", "is out of range")).replace("Input should be", "must be")
    msg = str(error.get("msg", "is invalid"))
    return msg.removeprefix("Value error, ").replace("Input should be", "must be")


def field_name(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ())) or "body"


def validate(schema: type[M], body: Mapping[str, Any]) -> M:
    """Validate ``body`` against ``schema``; the first problem becomes the error."""
    try:
        return schema.model_validate(dict(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = field_name(first)
        raise InvalidInput(f"{name}: {_rule(first)}", field=name) from None
