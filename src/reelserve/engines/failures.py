"""Turning whatever a model pipeline raises into errors the service can show."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from reelserve.core.errors import GenerationFailed, ReelserveError

log = logging.getLogger(__name__)


@contextmanager
def pipeline_failures(engine: str, doing: str = "render the video") -> Iterator[None]:
    """Let our own errors through; wrap anything else in :class:`GenerationFailed`.

    ``JobCanceled`` and ``LeaseLost`` come from the progress callback and must reach the worker
    unchanged. Anything else (a shape mismatch, out of memory, ...) becomes a failure whose
    message names only the engine and the exception type: exception texts from torch and
    diffusers carry file paths and internal details. The original stays chained for the logs.
    """
    try:
        yield
    except ReelserveError:
        raise
    except Exception as exc:
        log.warning("%s engine failed to %s", engine, doing, exc_info=True)
        raise GenerationFailed(
            f"The {engine} engine failed to {doing} ({type(exc).__name__})."
        ) from exc
