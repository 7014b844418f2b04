"""The API on S3-compatible storage: uploads and outputs live in a bucket on a real S3
server on loopback (tests/s3_server.py), and records carry presigned links to it."""

from __future__ import annotations

import io
import time
from urllib.parse import urlparse

import av
import httpx
import pytest

from reelserve.blobs import UrlSigning
from tests.api.conftest import MODEL, ServiceFactory
from tests.fixtures import LANDSCAPE_PNG
from tests.s3_server import S3Server

pytestmark = pytest.mark.s3


def test_uploads_and_outputs_live_in_the_bucket(
    make_service: ServiceFactory, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    service = make_service(**s3_server.settings_overrides(bucket, prefix="tenant-a"))
    with LANDSCAPE_PNG.open("rb") as start:
        response = service.client.post(
            f"/api/v1/generation/{MODEL}",
            headers=service.auth,
            data={"prompt": "the waves roll in", "generate_audio": "false"},
            files={"image_url": ("start.png", start, "image/png")},
        )
    assert response.status_code == 200, response.text
    created = response.json()
    # The upload went to the bucket; its link is a presigned GET on the S3 server.
    upload_url = created["input"]["image_url"]
    assert upload_url.startswith(f"{s3_server.endpoint_url}/{bucket}/tenant-a/uploads/")
    assert httpx.get(upload_url).content == LANDSCAPE_PNG.read_bytes()

    done = service.wait(created["id"])
    assert done["status"] == "COMPLETED", done
    video = done["data"]["videos"][0]
    url = video["url"]
    assert urlparse(url).path.startswith(f"/{bucket}/tenant-a/outputs/")
    assert "X-Amz-Signature=" in url
    assert "/api/v1/files/" not in url
    download = httpx.get(url)  # no API key: the presigned link is the credential
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(download.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (video["width"], video["height"])
    objects = s3_server.admin.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"].split("/")[1] for o in objects) == ["outputs", "uploads"]

    # Every GET signs again (SigV4 dates have one-second resolution, hence the wait).
    time.sleep(1.1)
    again = service.get(created["id"])["data"]["videos"][0]
    assert again["url"] != url
    assert again["expires_at"] > video["expires_at"]
    assert httpx.get(again["url"]).content == download.content
    # The API's own /files route serves nothing in S3 mode, even with a valid signature.
    key = urlparse(url).path.removeprefix(f"/{bucket}/tenant-a/")
    signing = UrlSigning(service.settings.signing_secret(), 60)
    hmac_link, _ = signing.sign("http://testserver/api/v1", key)
    assert service.client.get(hmac_link).status_code == 404
