"""The Blobs contract (LocalBlobs today) and signed file URLs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from reelserve.blobs import LocalBlobs, UrlSigning
from reelserve.core.ports import Blobs


@pytest.fixture
def blobs(tmp_path: Path) -> Blobs:
    return LocalBlobs(tmp_path / "files")


def test_put_fetch_delete(blobs: Blobs, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"frames")
    blobs.put_file("outputs/ws_1/gen_1-1.mp4", source)
    assert blobs.exists("outputs/ws_1/gen_1-1.mp4")
    copy = tmp_path / "copy.bin"
    blobs.fetch_to("outputs/ws_1/gen_1-1.mp4", copy)
    assert copy.read_bytes() == b"frames"
    blobs.delete("outputs/ws_1/gen_1-1.mp4")
    assert not blobs.exists("outputs/ws_1/gen_1-1.mp4")
    blobs.delete("outputs/ws_1/gen_1-1.mp4")  # deleting twice is fine


@pytest.mark.parametrize("key", ["../secret", "a/../../b", "/etc/passwd", "a//b", "a/./b", ""])
def test_keys_cannot_leave_the_root(blobs: Blobs, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        blobs.exists(key)


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    blobs = LocalBlobs(tmp_path / "files")

    def interrupted_upload() -> None:
        with blobs.writer("uploads/ws/x.png") as handle:
            handle.write(b"half")
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        interrupted_upload()
    assert not blobs.exists("uploads/ws/x.png")
    assert list((tmp_path / "files").rglob("*.part-*")) == []


def test_signed_urls_bind_key_and_expiry() -> None:
    signing = UrlSigning(secret=b"s" * 32, ttl_s=60)
    url, expires = signing.sign("http://h/api/v1", "outputs/ws/gen.mp4", now=1_000.0)
    parsed = urlparse(url)
    assert parsed.path == "/api/v1/files/outputs/ws/gen.mp4"
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    assert int(query["expires"]) == 1_060 == int(expires.timestamp())
    assert signing.verify("outputs/ws/gen.mp4", 1_060, query["signature"], now=1_000.0)
    assert not signing.verify("outputs/ws/gen.mp4", 1_060, query["signature"], now=1_061.0)
    assert not signing.verify("outputs/ws/other.mp4", 1_060, query["signature"], now=1_000.0)
    assert not signing.verify("outputs/ws/gen.mp4", 1_061, query["signature"], now=1_000.0)
    other = UrlSigning(secret=b"t" * 32, ttl_s=60)
    assert not other.verify("outputs/ws/gen.mp4", 1_060, query["signature"], now=1_000.0)
