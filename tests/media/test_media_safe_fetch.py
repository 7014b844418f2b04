"""URL checks and fetching: nothing private is ever reached, everything public works."""

from __future__ import annotations

import time
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import quote

import pytest
from media_testkit import PAYLOAD, FakeDns, LocalCa, LoopbackServer, Tripwire

from reelserve.core.errors import InputTooLarge, InvalidInput
from reelserve.media.addresses import address_refusal, parse_ipv4_literal
from reelserve.media.safe_fetch import MAX_URL_LENGTH, check_url, fetch_to_file

FIELD = "image_url"
PRIVATE = "must not point to a private, loopback, link-local or metadata address"
SPECIAL = "must not point to an unspecified, multicast or reserved address"
SCHEME = "URL scheme must be http or https"
CREDENTIALS = "URL must not contain credentials"
BAD_HOST = "URL host is not valid"

# (url, rule in the message). Every spelling of loopback, every private, link-local and
# metadata range, embedded-IPv4 forms, odd schemes, credentials, length.
REFUSED_URLS: list[tuple[str, str]] = [
    # loopback, in every spelling the C library or a browser accepts
    ("http://127.0.0.1/", PRIVATE),
    ("http://127.1/", PRIVATE),
    ("http://127.0.1/", PRIVATE),
    ("http://2130706433/", PRIVATE),
    ("http://0177.0.0.1/", PRIVATE),
    ("http://0x7f.1/", PRIVATE),
    ("http://0x7F000001/", PRIVATE),
    ("http://017700000001/", PRIVATE),
    ("http://127.0.0.1./", PRIVATE),
    ("http://127.255.255.254:8080/x", PRIVATE),
    ("http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/", PRIVATE),  # full-width
    ("http://[::1]/", PRIVATE),
    ("http://[0:0:0:0:0:0:0:1]/", PRIVATE),
    ("http://[::ffff:127.0.0.1]/", PRIVATE),
    ("http://[::ffff:7f00:1]/", PRIVATE),
    ("http://[::127.0.0.1]/", PRIVATE),  # IPv4-compatible
    ("http://[64:ff9b::127.0.0.1]/", PRIVATE),  # NAT64
    ("http://[2002:7f00:1::]/", PRIVATE),  # 6to4
    ("http://localhost/", PRIVATE),
    ("http://LOCALHOST./", PRIVATE),
    ("http://api.localhost:3000/", PRIVATE),
    # unspecified
    ("http://0.0.0.0/", SPECIAL),
    ("http://0/", SPECIAL),
    ("http://[::]/", SPECIAL),
    # private ranges
    ("http://10.0.0.1/", PRIVATE),
    ("http://10.255.255.255/", PRIVATE),
    ("http://172.16.5.4/", PRIVATE),
    ("http://172.31.255.1/", PRIVATE),
    ("http://192.168.1.1/", PRIVATE),
    ("http://0xc0.0xa8.1.1/", PRIVATE),
    ("http://100.64.0.1/", PRIVATE),  # carrier-grade NAT
    ("http://[fc00::1]/", PRIVATE),
    ("http://[fd12:3456:789a::1]/", PRIVATE),
    ("http://[::ffff:10.0.0.1]/", PRIVATE),
    # link-local
    ("http://169.254.1.1/", PRIVATE),
    ("http://[fe80::1]/", PRIVATE),
    ("http://[fe80::1%25eth0]/", PRIVATE),
    # cloud metadata
    ("http://169.254.169.254/latest/meta-data/", PRIVATE),
    ("http://0xa9fea9fe/", PRIVATE),
    ("http://2852039166/", PRIVATE),
    ("http://[::ffff:169.254.169.254]/", PRIVATE),
    ("http://[fd00:ec2::254]/latest/meta-data/", PRIVATE),
    ("http://metadata.google.internal/computeMetadata/v1/", PRIVATE),
    ("http://100.100.100.200/latest/meta-data/", PRIVATE),
    ("http://168.63.129.16/", PRIVATE),
    # multicast and reserved
    ("http://224.0.0.1/", SPECIAL),
    ("http://255.255.255.255/", SPECIAL),
    ("http://240.0.0.1/", SPECIAL),
    ("http://[ff02::1]/", SPECIAL),
    ("http://192.0.2.10/", SPECIAL),
    # schemes
    ("file:///etc/passwd", SCHEME),
    ("ftp://example.com/image.png", SCHEME),
    ("gopher://example.com:70/_x", SCHEME),
    ("data:image/png;base64,iVBORw0KGgo=", SCHEME),
    ("javascript:alert(1)", SCHEME),
    ("//example.com/image.png", SCHEME),
    ("example.com/image.png", SCHEME),
    # credentials
    ("http://user:secret@example.com/image.png", CREDENTIALS),
    ("http://user@example.com/image.png", CREDENTIALS),
    ("http://example.com@127.0.0.1/", CREDENTIALS),
    # malformed
    ("https://example.com/" + "a" * MAX_URL_LENGTH, f"at most {MAX_URL_LENGTH} characters"),
    ("http:///image.png", "URL must have a host"),
    ("http://1.2.3.256/", BAD_HOST),
    ("http://1.2.3.4.5/", BAD_HOST),
    ("http://09.1.1.1/", BAD_HOST),
    ("http://exa mple.com/", "spaces or control characters"),
    ("http://example.com\n.evil/", "spaces or control characters"),
    ("http://example.com:99999/", "is not a valid URL"),
    ("http://[::1/", "is not a valid URL"),
]


@pytest.mark.parametrize(("url", "rule"), REFUSED_URLS)
def test_check_url_refuses(url: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_url(url, field=FIELD)
    assert caught.value.field == FIELD
    assert caught.value.message.startswith(f"{FIELD}: ")
    assert rule in caught.value.message


def test_refusal_table_is_broad() -> None:
    address_forms = [u for u, rule in REFUSED_URLS if rule in (PRIVATE, SPECIAL)]
    assert len(address_forms) >= 30


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "https://cdn.example.com:8443/a/b.jpg?sig=abc&x=1#frag",
        "http://93.184.216.34/image.png",
        "http://8.8.8.8./x",
        "http://[2606:4700:4700::1111]/x",
        "http://[::ffff:8.8.8.8]/x",
        "https://b\u00fccher.example/x.png",  # IDN
        "HTTPS://Example.COM/Upper.png",
    ],
)
def test_check_url_accepts_public(url: str) -> None:
    check_url(url, field=FIELD)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/", "http://localhost/", "http://10.0.0.1/", "http://[::1]/"]
)
def test_allow_private_lifts_the_private_rule(url: str) -> None:
    check_url(url, field=FIELD, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/",
        "http://100.100.100.200/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_allow_private_still_refuses_metadata_and_special(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url, field=FIELD, allow_private=True)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.2", "10.1.0.2"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("0x7f.0x0.0.1", "127.0.0.1"),
        ("0x.0.0.0", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
        ("4294967295", "255.255.255.255"),
    ],
)
def test_parse_ipv4_literal_spellings(spelling: str, address: str) -> None:
    assert parse_ipv4_literal(spelling) == ip_address(address)


@pytest.mark.parametrize("name", ["example.com", "a1.b2", "0x.example", "123.example"])
def test_parse_ipv4_literal_leaves_names_alone(name: str) -> None:
    assert parse_ipv4_literal(name) is None


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("2002:808:808::1", True),  # 6to4 of a public address
        ("64:ff9b::8.8.8.8", True),
        ("2002:a9fe:a9fe::1", False),  # 6to4 of the metadata address
        ("64:ff9b::10.0.0.1", False),
        ("::ffff:0:192.168.0.1", False),  # IPv4-translated form
        ("2001:db8::1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ],
)
def test_address_rule(address: str, allowed: bool) -> None:
    assert (address_refusal(ip_address(address)) is None) is allowed


# --- fetch: refused before any connection ------------------------------------------------

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0177.0.0.1",
    "0x7f.1",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "localhost",
    "0.0.0.0",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_fetch_never_connects_to_loopback_spellings(
    host: str, tripwire: Tripwire, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            f"http://{host}:{tripwire.port}/x", dest, field=FIELD, max_bytes=1000, timeout_s=2
        )
    assert caught.value.field == FIELD
    tripwire.assert_untouched()
    assert not dest.exists()


@pytest.mark.parametrize(
    ("answers", "rule"),
    [
        (["127.0.0.1"], PRIVATE),
        (["::1"], PRIVATE),
        (["::ffff:127.0.0.1"], PRIVATE),
        (["93.184.216.34", "127.0.0.1"], PRIVATE),  # one bad answer is enough
        (["2606:4700::1111", "10.1.2.3"], PRIVATE),
        (["169.254.169.254"], PRIVATE),
        (["fd00:ec2::254"], PRIVATE),
        (["0.0.0.0"], SPECIAL),
    ],
)
def test_fetch_checks_every_resolved_address(
    answers: list[str], rule: str, fake_dns: FakeDns, tripwire: Tripwire, tmp_path: Path
) -> None:
    fake_dns.records["rebind.test"] = answers
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            f"http://rebind.test:{tripwire.port}/x",
            tmp_path / "out",
            field=FIELD,
            max_bytes=1000,
            timeout_s=2,
        )
    assert caught.value.message == f"{FIELD}: {rule}"
    tripwire.assert_untouched()


def test_fetch_refuses_localhost_by_name_even_if_dns_would_say_otherwise(
    tripwire: Tripwire, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match=PRIVATE):
        fetch_to_file(
            f"http://localhost:{tripwire.port}/",
            tmp_path / "out",
            field=FIELD,
            max_bytes=10,
            timeout_s=2,
        )
    tripwire.assert_untouched()


def test_unknown_host_is_reported_without_details(tmp_path: Path, fake_dns: FakeDns) -> None:
    fake_dns.records["nowhere.test"] = []
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            "http://nowhere.test/x", tmp_path / "out", field=FIELD, max_bytes=10, timeout_s=2
        )
    assert caught.value.message == f"{FIELD}: could not be fetched (host not found)"


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0xa9fea9fe/",
        "http://metadata.google.internal/",
        "http://meta.test/",  # resolves to the metadata address
        "http://0.0.0.0:{tripwire}/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{tripwire}/",
        "http://user:pw@127.0.0.1:{tripwire}/",
    ],
)
def test_redirect_to_a_forbidden_target_is_refused(
    target: str,
    http_server: LoopbackServer,
    tripwire: Tripwire,
    fake_dns: FakeDns,
    tmp_path: Path,
) -> None:
    fake_dns.records["meta.test"] = ["169.254.169.254"]
    location = target.replace("{tripwire}", str(tripwire.port))
    dest = tmp_path / "out"
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            http_server.url(f"/redirect?to={quote(location, safe='')}"),
            dest,
            field=FIELD,
            max_bytes=1000,
            timeout_s=2,
            allow_private=True,
        )
    assert caught.value.message.endswith("(after a redirect)")
    assert http_server.hits["/redirect"] == 1
    tripwire.assert_untouched()
    assert not dest.exists()


# --- fetch: positive cases against a loopback server -------------------------------------


def test_fetch_ok(http_server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "image"
    fetched = fetch_to_file(
        http_server.url("/file"),
        dest,
        field=FIELD,
        max_bytes=len(PAYLOAD),
        timeout_s=5,
        allow_private=True,
    )
    assert dest.read_bytes() == PAYLOAD
    assert fetched.path == dest
    assert fetched.size == len(PAYLOAD)
    assert fetched.final_url == http_server.url("/file")
    assert fetched.content_type == "image/png"


def test_fetch_connects_to_the_checked_address_and_keeps_the_host_name(
    http_server: LoopbackServer, fake_dns: FakeDns, tmp_path: Path
) -> None:
    fake_dns.records["files.test"] = ["127.0.0.1"]
    fetch_to_file(
        http_server.url("/echo-host", host="files.test"),
        tmp_path / "out",
        field=FIELD,
        max_bytes=100,
        timeout_s=5,
        allow_private=True,
    )
    assert (tmp_path / "out").read_text() == f"files.test:{http_server.port}"
    # Resolved once and used: there is no second lookup for a rebinding answer to win.
    assert fake_dns.lookups["files.test"] == 1


def test_fetch_404(http_server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            http_server.url("/missing"),
            dest,
            field=FIELD,
            max_bytes=1000,
            timeout_s=5,
            allow_private=True,
        )
    assert caught.value.message == f"{FIELD}: could not be fetched (HTTP 404)"
    assert caught.value.field == FIELD
    assert not dest.exists()


def test_size_cap_exceeded_mid_stream_removes_the_partial_file(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    with pytest.raises(InputTooLarge) as caught:
        fetch_to_file(
            http_server.url("/stream?size=400000"),
            dest,
            field=FIELD,
            max_bytes=50_000,
            timeout_s=5,
            allow_private=True,
        )
    assert caught.value.message == f"{FIELD}: file must be at most 50000 bytes"
    assert caught.value.field == FIELD
    assert not dest.exists()


def test_body_at_the_cap_is_accepted(http_server: LoopbackServer, tmp_path: Path) -> None:
    fetched = fetch_to_file(
        http_server.url("/stream?size=40960"),
        tmp_path / "out",
        field=FIELD,
        max_bytes=40960,
        timeout_s=5,
        allow_private=True,
    )
    assert fetched.size == 40960


def test_declared_length_over_the_cap_is_refused_before_the_body(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    with pytest.raises(InputTooLarge, match=r"at most 10 MB"):
        fetch_to_file(
            http_server.url("/declared"),
            dest,
            field=FIELD,
            max_bytes=10_000_000,
            timeout_s=5,
            allow_private=True,
        )
    assert not dest.exists()


def test_redirect_chain_is_followed(http_server: LoopbackServer, tmp_path: Path) -> None:
    fetched = fetch_to_file(
        http_server.url("/hop/3"),
        tmp_path / "out",
        field=FIELD,
        max_bytes=len(PAYLOAD),
        timeout_s=5,
        allow_private=True,
    )
    assert fetched.final_url == http_server.url("/file")
    assert (tmp_path / "out").read_bytes() == PAYLOAD


def test_redirect_chain_longer_than_allowed_is_refused(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match=r"more than 2 redirects"):
        fetch_to_file(
            http_server.url("/hop/3"),
            tmp_path / "out",
            field=FIELD,
            max_bytes=len(PAYLOAD),
            timeout_s=5,
            allow_private=True,
            max_redirects=2,
        )
    assert http_server.hits["/file"] == 0


def test_redirect_loop_is_capped(http_server: LoopbackServer, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            http_server.url("/loop"),
            tmp_path / "out",
            field=FIELD,
            max_bytes=1000,
            timeout_s=5,
            allow_private=True,
        )
    assert caught.value.message == f"{FIELD}: could not be fetched (more than 5 redirects)"
    assert http_server.hits["/loop"] == 6  # the first request and five redirects


def test_slow_server_times_out(http_server: LoopbackServer, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            http_server.url("/slow"),
            tmp_path / "out",
            field=FIELD,
            max_bytes=1000,
            timeout_s=0.5,
            allow_private=True,
        )
    assert caught.value.message == f"{FIELD}: could not be fetched (timed out)"
    assert time.monotonic() - started < 2


def test_total_timeout_stops_a_dripping_body(http_server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(InvalidInput, match=r"timed out"):
        fetch_to_file(
            http_server.url("/drip"),
            dest,
            field=FIELD,
            max_bytes=1000,
            timeout_s=0.5,
            allow_private=True,
        )
    assert time.monotonic() - started < 1.5
    assert not dest.exists()


def test_connection_refused_is_a_safe_message(tmp_path: Path) -> None:
    tripwire = Tripwire()
    port = tripwire.port
    tripwire.close()  # nothing listens there now
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            f"http://127.0.0.1:{port}/",
            tmp_path / "out",
            field=FIELD,
            max_bytes=10,
            timeout_s=2,
            allow_private=True,
        )
    assert caught.value.message == f"{FIELD}: could not be fetched (connection failed)"


# --- TLS: the certificate is verified for the name, while the socket goes to the IP --------


def test_https_verifies_the_certificate_for_the_original_name(
    https_server: LoopbackServer, local_ca: LocalCa, fake_dns: FakeDns, tmp_path: Path
) -> None:
    fake_dns.records["files.test"] = ["127.0.0.1"]
    fetched = fetch_to_file(
        https_server.url("/file", host="files.test"),
        tmp_path / "out",
        field=FIELD,
        max_bytes=len(PAYLOAD),
        timeout_s=5,
        allow_private=True,
        ssl_context=local_ca.client_context(),
    )
    assert fetched.size == len(PAYLOAD)


@pytest.mark.parametrize("host", ["other.test", "127.0.0.1"])
def test_https_refuses_a_certificate_for_another_name(
    host: str,
    https_server: LoopbackServer,
    local_ca: LocalCa,
    fake_dns: FakeDns,
    tmp_path: Path,
) -> None:
    fake_dns.records["other.test"] = ["127.0.0.1"]
    with pytest.raises(InvalidInput) as caught:
        fetch_to_file(
            https_server.url("/file", host=host),
            tmp_path / "out",
            field=FIELD,
            max_bytes=len(PAYLOAD),
            timeout_s=5,
            allow_private=True,
            ssl_context=local_ca.client_context(),
        )
    assert "TLS" in caught.value.message
    assert https_server.hits["/file"] == 0


def test_https_refuses_an_untrusted_certificate(
    https_server: LoopbackServer, fake_dns: FakeDns, tmp_path: Path
) -> None:
    fake_dns.records["files.test"] = ["127.0.0.1"]
    with pytest.raises(InvalidInput, match="TLS"):
        fetch_to_file(
            https_server.url("/file", host="files.test"),
            tmp_path / "out",
            field=FIELD,
            max_bytes=len(PAYLOAD),
            timeout_s=5,
            allow_private=True,
        )
