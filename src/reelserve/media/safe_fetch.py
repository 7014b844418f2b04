"""Fetch user-given URLs without letting them reach the service's own network.

Two layers:

* :func:`check_url` runs at create time without DNS: scheme, credentials, length, and IP
  literals in every spelling (plus ``localhost``) against the address rules.
* :func:`fetch_to_file` resolves the name itself, checks every resolved address, then
  connects to the address it checked, so a DNS answer that changes between check and
  connect (rebinding) cannot steer the request. The original name still travels in the
  ``Host`` header and in TLS (SNI and certificate verification). Redirects are followed
  by hand, each hop checked the same way.

Error messages name the field and the rule and are safe to show to the caller: no
resolved addresses, no library messages.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address
from pathlib import Path
from typing import Final
from urllib.parse import urljoin, urlsplit

import httpx

from reelserve.core.errors import InvalidInput
from reelserve.media.addresses import (
    IPAddress,
    address_refusal,
    host_name_refusal,
    parse_ip_literal,
)
from reelserve.media.refusals import refusal, too_large

MAX_URL_LENGTH: Final = 2048
_SCHEMES: Final = {"http": 80, "https": 443}
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_USER_AGENT: Final = "reelserve-fetch/1"


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    size: int
    final_url: str
    content_type: str | None


@dataclass(frozen=True)
class _Target:
    """A URL that passed the static checks, split into what a request needs."""

    url: str
    scheme: str
    host: str  # lower-case ASCII, no brackets, no trailing dot
    port: int
    host_header: str
    path_and_query: str
    literal: IPAddress | None


def check_url(url: str, *, field: str, allow_private: bool = False) -> None:
    """Refuse a URL that can be seen to be unsafe without resolving it."""
    _parse_target(url, field=field, allow_private=allow_private)


def fetch_to_file(
    url: str,
    dest: Path,
    *,
    field: str,
    max_bytes: int,
    timeout_s: float,
    allow_private: bool = False,
    max_redirects: int = 5,
    ssl_context: ssl.SSLContext | None = None,
) -> FetchedFile:
    """Download ``url`` into ``dest``, refusing unsafe addresses and oversize bodies.

    ``timeout_s`` bounds the whole fetch (DNS, every hop, the body). ``ssl_context``
    replaces the default certificate store (a deployment with its own CA); certificates
    are always verified. Raises :class:`InvalidInput` or :class:`InputTooLarge` carrying
    ``field``; ``dest`` does not exist after a failure.
    """
    deadline = time.monotonic() + timeout_s
    current = url
    suffix = ""
    for hop in range(max_redirects + 1):
        target = _parse_target(current, field=field, allow_private=allow_private, suffix=suffix)
        addresses = _checked_addresses(target, field, allow_private, deadline, suffix)
        with _open_response(target, addresses, field, deadline, ssl_context) as response:
            location = response.headers.get("location")
            if response.status_code in _REDIRECT_STATUSES and location:
                if hop == max_redirects:
                    raise _unfetchable(field, f"more than {max_redirects} redirects")
                current = urljoin(target.url, location)
                suffix = " (after a redirect)"
                continue
            if not 200 <= response.status_code < 300:
                raise _unfetchable(field, f"HTTP {response.status_code}")
            _refuse_declared_oversize(response, field, max_bytes)
            size = _stream_body(response, dest, field, max_bytes, deadline)
            return FetchedFile(
                path=dest,
                size=size,
                final_url=target.url,
                content_type=response.headers.get("content-type"),
            )
    raise AssertionError("unreachable: the loop returns or raises")


# --- static checks ---------------------------------------------------------------------


def _invalid(field: str, rule: str, suffix: str = "") -> InvalidInput:
    return refusal(field, rule + suffix)


def _unfetchable(field: str, reason: str) -> InvalidInput:
    """A transfer failure, described without hosts, addresses or library messages."""
    return refusal(field, f"could not be fetched ({reason})")


def _ascii_host(hostname: str, field: str, suffix: str) -> str:
    host = hostname.lower()
    if not host.isascii():
        # IDNA also folds look-alikes such as full-width digits into ASCII, so the literal
        # checks below see "127.0.0.1" however it was typed.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _invalid(field, "URL host is not valid", suffix) from None
    return host


def _parse_target(url: str, *, field: str, allow_private: bool, suffix: str = "") -> _Target:
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(field, f"URL must be at most {MAX_URL_LENGTH} characters", suffix)
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _invalid(field, "URL must not contain spaces or control characters", suffix)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid(field, "is not a valid URL", suffix) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise _invalid(field, "URL scheme must be http or https", suffix)
    if "@" in parts.netloc:
        raise _invalid(field, "URL must not contain credentials", suffix)
    if not parts.hostname:
        raise _invalid(field, "URL must have a host", suffix)
    if port == 0:
        raise _invalid(field, "URL port is not valid", suffix)

    host = _ascii_host(parts.hostname, field, suffix)
    if host.endswith(".") and ":" not in host:
        host = host[:-1]
    try:
        literal = parse_ip_literal(host)
    except ValueError:
        raise _invalid(field, "URL host is not valid", suffix) from None
    if literal is None:
        labels = host.split(".")
        if not set(host) <= _NAME_CHARS or len(host) > 253 or not all(labels):
            raise _invalid(field, "URL host is not valid", suffix)
        broken_rule = host_name_refusal(host, allow_private=allow_private)
    else:
        broken_rule = address_refusal(literal, allow_private=allow_private)
        host = literal.compressed
    if broken_rule is not None:
        raise _invalid(field, broken_rule, suffix)

    default_port = _SCHEMES[scheme]
    bracketed = f"[{host}]" if isinstance(literal, IPv6Address) else host
    path_and_query = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port or default_port,
        host_header=bracketed if port in (None, default_port) else f"{bracketed}:{port}",
        path_and_query=path_and_query,
        literal=literal,
    )


# --- resolution ------------------------------------------------------------------------


def _remaining(deadline: float, field: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _unfetchable(field, "timed out")
    return left


def _resolve(host: str, port: int, field: str, deadline: float) -> list[IPAddress]:
    """All addresses of ``host``, within the deadline (getaddrinfo has no timeout)."""
    answers: list[tuple[object, ...]] = []
    failed: list[OSError] = []

    def lookup() -> None:
        try:
            answers.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)

    # A daemon thread: a resolver that hangs past the deadline is abandoned, not waited on.
    worker = threading.Thread(target=lookup, name="reelserve-resolve", daemon=True)
    worker.start()
    worker.join(_remaining(deadline, field))
    if worker.is_alive():
        raise _unfetchable(field, "timed out")
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in answers:
        if not isinstance(sockaddr, tuple) or not isinstance(sockaddr[0], str):
            continue
        address = ip_address(sockaddr[0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if failed or not addresses:
        raise _unfetchable(field, "host not found")
    return addresses


def _checked_addresses(
    target: _Target, field: str, allow_private: bool, deadline: float, suffix: str
) -> list[IPAddress]:
    if target.literal is not None:
        return [target.literal]  # already judged by _parse_target
    addresses = _resolve(target.host, target.port, field, deadline)
    # Every answer must pass, not just the first: otherwise a name with one public and
    # one private address would reach the private one whenever the client falls back.
    for address in addresses:
        broken_rule = address_refusal(address, allow_private=allow_private)
        if broken_rule is not None:
            raise _invalid(field, broken_rule, suffix)
    return addresses


# --- transfer --------------------------------------------------------------------------


def _request_url(target: _Target, address: IPAddress) -> str:
    host = f"[{address.compressed}]" if isinstance(address, IPv6Address) else str(address)
    return f"{target.scheme}://{host}:{target.port}{target.path_and_query}"


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # httpx wraps httpcore, which wraps ssl: a short chain
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _failure(exc: httpx.HTTPError, field: str) -> InvalidInput:
    if isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    elif _caused_by_tls(exc):
        reason = "TLS handshake or certificate check failed"
    elif isinstance(exc, httpx.ConnectError):
        reason = "connection failed"
    else:
        reason = "transfer failed"
    return _unfetchable(field, reason)


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """httpx's default verifying context, built once (loading the CA bundle is slow)."""
    return httpx.create_ssl_context()


@contextmanager
def _open_response(
    target: _Target,
    addresses: list[IPAddress],
    field: str,
    deadline: float,
    ssl_context: ssl.SSLContext | None,
) -> Iterator[httpx.Response]:
    """Send GET to the first checked address that accepts a connection."""
    headers = {
        "Host": target.host_header,
        "User-Agent": _USER_AGENT,
        "Accept": "*/*",
        # Identity keeps the byte cap about the bytes on the wire and on disk.
        "Accept-Encoding": "identity",
    }
    extensions: dict[str, str] = {}
    if target.scheme == "https" and target.literal is None:
        # Connect to the IP, but verify the certificate for (and send SNI of) the name.
        extensions["sni_hostname"] = target.host
    # A fresh client per hop: a pooled TLS connection is keyed by IP and port, and must
    # not be reused for another name whose certificate was never checked on it.
    # trust_env=False: a proxy from the environment would resolve the name itself.
    with httpx.Client(
        timeout=_remaining(deadline, field),
        follow_redirects=False,
        trust_env=False,
        verify=ssl_context if ssl_context is not None else _default_tls(),
    ) as client:
        response: httpx.Response | None = None
        for index, address in enumerate(addresses):
            request = client.build_request(
                "GET", _request_url(target, address), headers=headers, extensions=extensions
            )
            try:
                response = client.send(request, stream=True)
                break
            except httpx.ConnectError as exc:
                if _caused_by_tls(exc) or index == len(addresses) - 1:
                    raise _failure(exc, field) from exc
                _remaining(deadline, field)
            except httpx.HTTPError as exc:
                raise _failure(exc, field) from exc
        assert response is not None  # the loop sends or raises
        try:
            yield response
        except httpx.HTTPError as exc:
            raise _failure(exc, field) from exc
        finally:
            response.close()


def _refuse_declared_oversize(response: httpx.Response, field: str, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    if declared.isdigit() and int(declared) > max_bytes and not encoded:
        raise too_large(field, max_bytes)


def _stream_body(
    response: httpx.Response, dest: Path, field: str, max_bytes: int, deadline: float
) -> int:
    """Write the body to ``dest``; remove ``dest`` again if anything goes wrong."""
    size = 0
    try:
        with dest.open("wb") as out:
            # No chunk_size: httpx would buffer up to it, hiding a slow drip from the clock.
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(field, max_bytes)
                # Per-read timeouts alone would let a server drip bytes forever.
                _remaining(deadline, field)
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size
