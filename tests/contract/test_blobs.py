"""The Blobs contract, run against LocalBlobs and against S3Blobs on a real S3-compatible
HTTP server on loopback (tests/s3_server.py); and signed file URLs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from reelserve.blobs import FileLinks, LocalBlobs, UrlSigning, open_blobs
from reelserve.blobs.s3 import S3Blobs, parse_s3_url
from reelserve.core.ports import Blobs
from reelserve.settings import Settings
from tests.s3_server import S3Server

KEY = "outputs/ws_1/gen_1-1.mp4"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Blobs:
    settings = Settings(data_dir=tmp_path / "data")
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        settings = settings.with_overrides(**server.settings_overrides(server.new_bucket()))
    return open_blobs(settings)


def test_put_fetch_delete(blobs: Blobs, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"frames")
    assert not blobs.exists(KEY)
    blobs.put_file(KEY, source)
    assert blobs.exists(KEY)
    copy = tmp_path / "copy.bin"
    blobs.fetch_to(KEY, copy)
    assert copy.read_bytes() == b"frames"
    blobs.delete(KEY)
    assert not blobs.exists(KEY)
    blobs.delete(KEY)  # deleting twice is fine


def test_put_replaces_an_existing_file(blobs: Blobs, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    blobs.put_file(KEY, first)
    blobs.put_file(KEY, second)
    blobs.fetch_to(KEY, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"second"


def test_fetching_a_missing_file_raises(blobs: Blobs, tmp_path: Path) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - FileNotFoundError or ClientError
        blobs.fetch_to("outputs/ws_1/missing.mp4", tmp_path / "copy")


@pytest.mark.parametrize("key", ["../secret", "a/../../b", "/etc/passwd", "a//b", "a/./b", ""])
def test_keys_cannot_leave_the_root(blobs: Blobs, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        blobs.exists(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        blobs.presigned_get(key, 60)


def test_presigned_links(blobs: Blobs, tmp_path: Path) -> None:
    """S3 hands out direct links that work without credentials; the local folder has none
    (the API signs /files links instead)."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    blobs.put_file(KEY, source)
    get_url = blobs.presigned_get(KEY, 60)
    put_url = blobs.presigned_put("uploads/ws_1/up.png", 60)
    if isinstance(blobs, LocalBlobs):
        assert get_url is None
        assert put_url is None
        assert blobs.local_path(KEY) == blobs.path(KEY)
        return
    assert get_url is not None
    assert put_url is not None
    assert blobs.local_path(KEY) is None
    query = parse_qs(urlparse(get_url).query)
    assert query["X-Amz-Expires"] == ["60"]
    response = httpx.get(get_url)
    assert response.status_code == 200
    assert response.content == source.read_bytes()
    assert response.headers["content-type"] == "video/mp4"
    assert httpx.put(put_url, content=b"png bytes").status_code == 200
    blobs.fetch_to("uploads/ws_1/up.png", tmp_path / "up.png")
    assert (tmp_path / "up.png").read_bytes() == b"png bytes"
    # A file put through a link without a type is still served with its own.
    uploaded = blobs.presigned_get("uploads/ws_1/up.png", 60)
    assert uploaded is not None
    assert httpx.get(uploaded).headers["content-type"] == "image/png"
    # A tampered link is refused by the store.
    assert httpx.get(get_url.replace(KEY.split("/")[-1], "gen_1-2.mp4")).status_code == 403


@pytest.mark.s3
def test_large_files_go_up_in_parts(s3_server: S3Server, tmp_path: Path) -> None:
    overrides = s3_server.settings_overrides(s3_server.new_bucket(), prefix="p/q")
    blobs = open_blobs(Settings(data_dir=tmp_path).with_overrides(**overrides))
    assert isinstance(blobs, S3Blobs)
    threshold = 5 * 1024 * 1024  # S3's smallest part
    blobs.transfer.multipart_threshold = threshold
    blobs.transfer.multipart_chunksize = threshold
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(2 * threshold + 1024))
    blobs.put_file(KEY, source)
    head = s3_server.admin.head_object(Bucket=blobs.location.bucket, Key=f"p/q/{KEY}")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object's ETag counts parts
    assert head["ContentLength"] == source.stat().st_size
    blobs.fetch_to(KEY, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()


def test_s3_urls_name_a_bucket_and_prefix() -> None:
    assert parse_s3_url("s3://media") == parse_s3_url("s3://media/")
    location = parse_s3_url("s3://media/reel/serve/")
    assert (location.bucket, location.prefix) == ("media", "reel/serve/")
    with pytest.raises(ValueError, match="blob_url"):
        parse_s3_url("https://media/x")
    with pytest.raises(ValueError, match="blob_url"):
        open_blobs(Settings(blob_url="gs://media"))


def test_a_file_url_names_another_local_folder(tmp_path: Path) -> None:
    blobs = open_blobs(Settings(data_dir=tmp_path / "data", blob_url=f"file://{tmp_path}/shared"))
    assert isinstance(blobs, LocalBlobs)
    assert blobs.root == tmp_path / "shared"


@pytest.mark.s3
def test_links_are_signed_for_the_public_endpoint(s3_server: S3Server, tmp_path: Path) -> None:
    """Inside a compose network the API reaches the store as http://seaweedfs:8333 while
    clients download from the public name: links carry the public host."""
    overrides = s3_server.settings_overrides(s3_server.new_bucket())
    settings = Settings(data_dir=tmp_path, s3_public_url="https://s3.example.com")
    blobs = open_blobs(settings.with_overrides(**overrides))
    url = blobs.presigned_get(KEY, 60)
    assert url is not None
    assert urlparse(url).netloc == "s3.example.com"


def test_file_links_prefer_the_store_s_own(blobs: Blobs) -> None:
    links = FileLinks(blobs, UrlSigning(secret=b"s" * 32, ttl_s=30 * 24 * 3600))
    url, expires = links.sign("http://h/api/v1", KEY)
    if isinstance(blobs, LocalBlobs):
        assert url.startswith("http://h/api/v1/files/outputs/ws_1/gen_1-1.mp4?")
        return
    # SigV4 links live at most 7 days, whatever the configured TTL.
    assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["604800"]
    assert abs(expires.timestamp() - (time.time() + 604800)) < 5


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
