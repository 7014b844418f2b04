"""S3Blobs: a bucket (and key prefix) on AWS S3 or any S3-compatible store.

Large files go up in parts through boto3's transfer manager. Links are SigV4 presigned
URLs, signed against the public endpoint when the API reaches the store by another name
(``http://seaweedfs:8333`` inside a compose network, ``https://s3.example.com`` outside).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from reelserve.blobs.links import MAX_PRESIGN_S
from reelserve.blobs.local import check_key

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

AddressingStyle = Literal["auto", "path", "virtual"]
ADDRESSING_STYLES: dict[str, AddressingStyle] = {
    "auto": "auto",
    "path": "path",
    "virtual": "virtual",
}


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/some/prefix`` → bucket and key prefix."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"blob_url: expected s3://bucket[/prefix], got {url!r}")
    prefix = parsed.path.strip("/")
    return S3Location(parsed.netloc, f"{prefix}/" if prefix else "")


@dataclass(frozen=True)
class S3Options:
    """How to reach the store. None means boto3's usual sources (``AWS_ENDPOINT_URL``,
    ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``, profiles, instance roles)."""

    endpoint_url: str | None = None
    # The endpoint clients download from, when it differs from the one the server uses.
    public_endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    addressing_style: AddressingStyle = "auto"
    multipart_threshold_bytes: int = 64 * 1024 * 1024


def make_client(options: S3Options, endpoint_url: str | None) -> S3Client:
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": options.addressing_style},
        retries={"max_attempts": 5, "mode": "standard"},
    )
    kwargs: dict[str, Any] = {"config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if options.region:
        kwargs["region_name"] = options.region
    if options.access_key_id and options.secret_access_key:
        kwargs["aws_access_key_id"] = options.access_key_id
        kwargs["aws_secret_access_key"] = options.secret_access_key
    # A session per client: boto3's default session is shared global state.
    client: S3Client = boto3.session.Session().client("s3", **kwargs)
    return client


class S3Blobs:
    def __init__(
        self,
        client: S3Client,
        location: S3Location,
        *,
        signer: S3Client | None = None,
        multipart_threshold_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.client = client
        self.location = location
        self.signer = signer or client
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold_bytes,
            multipart_chunksize=max(multipart_threshold_bytes // 4, 5 * 1024 * 1024),
        )

    @classmethod
    def open(cls, url: str, options: S3Options) -> S3Blobs:
        client = make_client(options, options.endpoint_url)
        signer = None
        if options.public_endpoint_url:
            signer = make_client(options, options.public_endpoint_url)
        return cls(
            client,
            parse_s3_url(url),
            signer=signer,
            multipart_threshold_bytes=options.multipart_threshold_bytes,
        )

    def ensure_bucket(self) -> bool:
        """Create the bucket when it is missing (deployment set-up); True if created."""
        bucket = self.location.bucket
        try:
            self.client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            # Any name: S3-compatible stores have regions AWS's type does not list.
            where: Any = {"LocationConstraint": region}
            self.client.create_bucket(Bucket=bucket, CreateBucketConfiguration=where)
        else:
            self.client.create_bucket(Bucket=bucket)
        return True

    def _object(self, key: str) -> str:
        return self.location.prefix + check_key(key)

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None  # nothing is on this disk: readers fetch_to a scratch file

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.location.bucket, Key=self._object(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put_file(self, key: str, source: Path) -> None:
        # An object appears whole or not at all: S3 has no partial objects, and an
        # abandoned multipart upload is aborted by the transfer manager.
        self.client.upload_file(
            str(source),
            self.location.bucket,
            self._object(key),
            ExtraArgs={"ContentType": _content_type(key)},
            Config=self.transfer,
        )

    def fetch_to(self, key: str, dest: Path) -> None:
        self.client.download_file(
            self.location.bucket, self._object(key), str(dest), Config=self.transfer
        )

    def delete(self, key: str) -> None:
        # Deleting a missing object succeeds on S3: deleting twice is fine.
        self.client.delete_object(Bucket=self.location.bucket, Key=self._object(key))

    def presigned_get(self, key: str, ttl_s: float) -> str | None:
        name = key.rsplit("/", 1)[-1]
        return self.signer.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.location.bucket,
                "Key": self._object(key),
                # Whoever uploaded it (a presigned PUT may send no type), a <video> tag
                # gets video/mp4 and a download gets the file's name.
                "ResponseContentType": _content_type(key),
                "ResponseContentDisposition": f'inline; filename="{name}"',
            },
            ExpiresIn=_expiry(ttl_s),
        )

    def presigned_put(self, key: str, ttl_s: float) -> str | None:
        return self.signer.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.location.bucket, "Key": self._object(key)},
            ExpiresIn=_expiry(ttl_s),
        )


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _expiry(ttl_s: float) -> int:
    return max(1, min(int(ttl_s), MAX_PRESIGN_S))
