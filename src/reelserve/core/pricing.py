"""Price of a generation from its plan, by a table kept in the configuration (api.md §5)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from reelserve.core.render import Mode

DEFAULT_PER_SECOND: dict[str, int] = {
    "standard:audio": 4,
    "standard:silent": 3,
    "pro:audio": 7,
    "pro:silent": 5,
    # Motion control is billed per second of the reference video.
    "motion:standard": 4,
    "motion:pro": 7,
}


@dataclass(frozen=True)
class PriceTable:
    per_second: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PER_SECOND))

    def rate(self, mode: Mode, quality: str, audio: bool) -> int:
        if mode is Mode.MOTION:
            key = f"motion:{quality}"
        else:
            key = f"{quality}:{'audio' if audio else 'silent'}"
        try:
            return self.per_second[key]
        except KeyError:
            raise ValueError(f"price table has no entry {key!r}") from None

    def price(self, mode: Mode, quality: str, audio: bool, seconds: float) -> int:
        # A started second is a billed second; 1e-6 absorbs float noise from probing.
        billed = max(1, math.ceil(seconds - 1e-6))
        return self.rate(mode, quality, audio) * billed
