"""``kling-ai/motion-control-v2.6``: the kling-v2.6 body, motion control only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict

from reelserve.core.render import Mode
from reelserve.core.spec import MediaLimits, ModelSpec, Normalized, UploadedMedia
from reelserve.models.kling_v2_6 import KlingV26Input, normalize_kling

ROUTE = "kling-ai/motion-control-v2.6"


class MotionControlV26Input(KlingV26Input):
    """Create body of ``kling-ai/motion-control-v2.6``: ``video_url`` and ``image_url`` required."""

    model_config = ConfigDict(extra="allow", title="MotionControlV26Input")


def normalize_motion(
    raw: Mapping[str, Any], uploads: Mapping[str, UploadedMedia], limits: MediaLimits
) -> Normalized:
    return normalize_kling(raw, uploads, limits, motion_only=True)


SPEC = ModelSpec(
    route=ROUTE,
    schema=MotionControlV26Input,
    modes=frozenset({Mode.MOTION}),
    normalize=normalize_motion,
)
