"""The served models: one file per route, listed in ``registry``.

Import rule: ``reelserve.models`` imports only ``reelserve.core``.
"""

from reelserve.models.registry import REGISTRY, lookup

__all__ = ["REGISTRY", "lookup"]
