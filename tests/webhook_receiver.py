"""A real webhook receiver on loopback for tests: records every POST, checks its
Standard Webhooks signature, and answers as scripted (statuses in order, or hanging).

The signature check here is written from the Standard Webhooks spec on its own, not with
reelserve's signing code, so a mistake there cannot hide itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def signature_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """True when one ``v1,`` signature in ``webhook-signature`` matches ``secret``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def record(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    url: str
    # Statuses answered in order; 200 once they run out.
    statuses: list[int] = field(default_factory=list)
    # Seconds to hold each request before answering (a receiver that never answers).
    hang_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    # Ids that arrived while a request with the same id was still being handled.
    overlapping: list[str] = field(default_factory=list)
    _in_flight: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout_s: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")


@contextmanager
def webhook_receiver(
    statuses: list[int] | None = None, hang_s: float = 0.0, hold_s: float = 0.0
) -> Iterator[Receiver]:
    """``hold_s``: how long every request stays in flight (widens overlap windows)."""
    receiver = Receiver(url="", statuses=list(statuses or []), hang_s=hang_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            got = Received({k.lower(): v for k, v in self.headers.items()}, body, time.time())
            with receiver._lock:
                if got.headers.get("webhook-id") in receiver._in_flight:
                    receiver.overlapping.append(got.id)
                receiver._in_flight.add(got.headers.get("webhook-id", ""))
                receiver.received.append(got)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            try:
                time.sleep(hold_s)
                if receiver.hang_s:
                    time.sleep(receiver.hang_s)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting
            finally:
                with receiver._lock:
                    receiver._in_flight.discard(got.headers.get("webhook-id", ""))

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/reelserve"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
