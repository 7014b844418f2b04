"""The served routes, by explicit list: adding a model is one file and one line here."""

from __future__ import annotations

from reelserve.core.errors import UnsupportedModel
from reelserve.core.spec import ModelSpec
from reelserve.models import kling_v2_6, motion_control_v2_6

REGISTRY: dict[str, ModelSpec] = {
    spec.route: spec
    for spec in (
        kling_v2_6.SPEC,
        motion_control_v2_6.SPEC,
    )
}


def lookup(route: str) -> ModelSpec:
    try:
        return REGISTRY[route]
    except KeyError:
        raise UnsupportedModel(
            f"model: {route!r} is not served here; served: {', '.join(sorted(REGISTRY))}",
            field="model",
        ) from None
