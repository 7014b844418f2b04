"""Test helpers for the media tests: fixture files, a loopback HTTP server, a tripwire,
fake DNS and a throwaway TLS CA. The pytest fixtures wrapping them are in conftest.py."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"


# --- tripwire: proves that refused URLs never open a connection --------------------------


class Tripwire:
    """A listening socket on 127.0.0.1 that nothing may connect to.

    The kernel completes TCP handshakes into the backlog without ``accept``, so a
    non-blocking ``accept`` afterwards sees any connection that was made.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]

    def assert_untouched(self) -> None:
        try:
            connection, _ = self._socket.accept()
        except BlockingIOError:
            return
        connection.close()
        pytest.fail("a refused URL opened a connection to the tripwire")

    def close(self) -> None:
        self._socket.close()


# --- fake DNS for names under .test (RFC 2606: they never resolve for real) ---------------


@dataclass
class FakeDns:
    records: dict[str, list[str]] = field(default_factory=dict)
    lookups: Counter[str] = field(default_factory=Counter)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Answer getaddrinfo for the names in ``records``; others resolve normally."""
        real_getaddrinfo = socket.getaddrinfo

        def getaddrinfo(
            host: str, port: int | str | None, *args: object, **kwargs: object
        ) -> list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[object, ...]]]:
            if host not in self.records:
                return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]
            self.lookups[host] += 1
            answers: list[
                tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[object, ...]]
            ] = []
            for address in self.records[host]:
                if ":" in address:
                    sockaddr: tuple[object, ...] = (address, port, 0, 0)
                    answers.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", sockaddr))
                else:
                    answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
            return answers

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- a loopback HTTP server with the routes the fetch tests need --------------------------


@dataclass
class LoopbackServer:
    port: int
    scheme: str
    hits: Counter[str]
    stop: threading.Event

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


PAYLOAD = (FIXTURES_DIR / "landscape_640x360.png").read_bytes()


def _handler(hits: Counter[str], stop: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self._send(302, b"", {"Location": location})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            hits[parts.path] += 1
            route = ROUTES.get(parts.path.split("/")[1], Handler.not_found)
            # The client hanging up mid-response is what some tests are about.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                route(self, parts.path, parse_qs(parts.query))

        def not_found(self, path: str, query: dict[str, list[str]]) -> None:
            self._send(404, b"no such thing")

        def file(self, path: str, query: dict[str, list[str]]) -> None:
            self._send(200, PAYLOAD, {"Content-Type": "image/png"})

        def echo_host(self, path: str, query: dict[str, list[str]]) -> None:
            self._send(200, self.headers.get("Host", "").encode())

        def stream(self, path: str, query: dict[str, list[str]]) -> None:
            # No Content-Length: the body ends when the connection closes (HTTP/1.0).
            size = int(query["size"][0])
            self.send_response(200)
            self.end_headers()
            for _ in range(0, size, 8192):
                self.wfile.write(b"x" * 8192)

        def declared(self, path: str, query: dict[str, list[str]]) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            self.wfile.write(b"x" * 1024)

        def hop(self, path: str, query: dict[str, list[str]]) -> None:
            left = int(path.rsplit("/", 1)[1])
            self._redirect(f"/hop/{left - 1}" if left > 0 else "/file")

        def loop(self, path: str, query: dict[str, list[str]]) -> None:
            self._redirect("/loop")

        def redirect(self, path: str, query: dict[str, list[str]]) -> None:
            self._redirect(query["to"][0])

        def slow(self, path: str, query: dict[str, list[str]]) -> None:
            stop.wait(3)
            self._send(200, b"late")

        def drip(self, path: str, query: dict[str, list[str]]) -> None:
            self.send_response(200)
            self.end_headers()
            for _ in range(60):  # one byte every 50 ms: no single read ever waits long
                if stop.wait(0.05):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()

    Route = Callable[[Handler, str, dict[str, list[str]]], None]
    ROUTES: dict[str, Route] = {
        "file": Handler.file,
        "echo-host": Handler.echo_host,
        "stream": Handler.stream,
        "declared": Handler.declared,
        "hop": Handler.hop,
        "loop": Handler.loop,
        "redirect": Handler.redirect,
        "slow": Handler.slow,
        "drip": Handler.drip,
    }
    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True  # slow handlers must not hold up shutdown

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-response are part of the tests


def serve(ssl_context: ssl.SSLContext | None) -> Iterator[LoopbackServer]:
    hits: Counter[str] = Counter()
    stop = threading.Event()
    server = _QuietServer(("127.0.0.1", 0), _handler(hits, stop))
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield LoopbackServer(
            port=server.server_address[1],
            scheme="https" if ssl_context else "http",
            hits=hits,
            stop=stop,
        )
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


# --- TLS: a throwaway CA and a certificate for files.test ----------------------------------


@dataclass(frozen=True)
class LocalCa:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_local_ca(folder: Path) -> LocalCa:
    """A CA and a leaf for ``files.test``, made with the openssl command line tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not available")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=reelserve test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    run("req", *key, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=files.test")
    (folder / "leaf.ext").write_text(
        "subjectAltName=DNS:files.test\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    run(
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    )
    return LocalCa(folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key")


def server_tls_context(ca: LocalCa) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca.cert_file, ca.key_file)
    return context
