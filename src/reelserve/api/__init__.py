"""The HTTP API.

Import rule: ``reelserve.api`` imports ``core``, ``models`` and ``services``; adapters
(store, blobs, media) are wired only in ``app.py``.
"""

from reelserve.api.app import create_app

__all__ = ["create_app"]
