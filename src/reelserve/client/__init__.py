"""reelserve.client: the Python SDK of the skills.video open platform API, as served by
reelserve (see docs/api.md).

It imports only httpx and pydantic (and the standard library), nothing else of reelserve,
so it can be vendored or installed alone and used against any server of the platform's
contract; reelserve's own additions (progress, queue position, cancel, history, resumable
events, idempotency) are used where the server has them.

    from reelserve.client import Client

    with Client() as client:  # REELSERVE_BASE_URL, REELSERVE_API_KEY
        record = client.generations.create_and_wait(prompt="a cat in neon rain")
        client.generations.download(record, "cat.mp4")
"""

from reelserve.client._base import DEFAULT_BASE_URL, DEFAULT_MODEL, Backoff, MediaInput
from reelserve.client._errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    ContentRejectedError,
    GenerationCanceledError,
    GenerationError,
    GenerationFailedError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    ReelserveError,
    ServiceUnavailableError,
    UnsupportedModelError,
    WaitTimeoutError,
)
from reelserve.client.client import AsyncClient, Client
from reelserve.client.generations import AsyncGenerations, Generations
from reelserve.client.types import (
    TERMINAL_STATUSES,
    Credits,
    Generation,
    GenerationData,
    Page,
    RunningItem,
    Status,
    Usage,
    Video,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "TERMINAL_STATUSES",
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncGenerations",
    "AuthenticationError",
    "Backoff",
    "Client",
    "ConflictError",
    "ContentRejectedError",
    "Credits",
    "Generation",
    "GenerationCanceledError",
    "GenerationData",
    "GenerationError",
    "GenerationFailedError",
    "Generations",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidInputError",
    "MediaInput",
    "NotFoundError",
    "Page",
    "RateLimitError",
    "ReelserveError",
    "RunningItem",
    "ServiceUnavailableError",
    "Status",
    "UnsupportedModelError",
    "Usage",
    "Video",
    "WaitTimeoutError",
]
