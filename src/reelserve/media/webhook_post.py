"""POST a webhook to a user-given URL under the same rules as fetching one: the host is
resolved here, every address is checked (no loopback, private, link-local or metadata
address unless allowed), and the connection goes to the address that was checked, so DNS
rebinding cannot steer it. Redirects are not followed (a 3xx is a failed attempt)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

import httpx

# Package-internal helpers of the fetcher: one implementation of the address rules.
from reelserve.media.safe_fetch import (
    _caused_by_tls,
    _checked_addresses,
    _default_tls,
    _failure,
    _parse_target,
    _remaining,
    _request_url,
)

_USER_AGENT: Final = "reelserve-webhook/1"


def post_webhook(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout_s: float,
    allow_private: bool = False,
    field: str = "webhook_url",
) -> int:
    """The receiver's HTTP status. Raises :class:`InvalidInput` naming ``field`` with a
    safe reason (the rule broken, or "timed out", "connection failed", ...) otherwise.
    ``timeout_s`` bounds resolution and each phase of the request; the response body is
    never read."""
    deadline = time.monotonic() + timeout_s
    target = _parse_target(url, field=field, allow_private=allow_private)
    addresses = _checked_addresses(target, field, allow_private, deadline, "")
    sent = {"Host": target.host_header, "User-Agent": _USER_AGENT, **headers}
    extensions: dict[str, str] = {}
    if target.scheme == "https" and target.literal is None:
        # Connect to the checked IP, but verify the certificate for (and send SNI of) the name.
        extensions["sni_hostname"] = target.host
    with httpx.Client(
        timeout=_remaining(deadline, field),
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment would resolve the name itself
        verify=_default_tls(),
    ) as client:
        for index, address in enumerate(addresses):
            request = client.build_request(
                "POST",
                _request_url(target, address),
                headers=sent,
                content=body,
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                if _caused_by_tls(exc) or index == len(addresses) - 1:
                    raise _failure(exc, field) from exc
                _remaining(deadline, field)
                continue
            except httpx.HTTPError as exc:
                raise _failure(exc, field) from exc
            response.close()
            return response.status_code
    raise AssertionError("unreachable: the loop returns or raises")
