"""The web playground: one static page at ``/`` that drives the API from a browser.

The page holds no secrets and needs no key to load; every API call it makes carries the
key the user pastes into it. See ``router`` for how the files are served.
"""

from reelserve.api.playground.router import router

__all__ = ["router"]
