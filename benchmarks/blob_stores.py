"""Cost of the blob stores: signing a link (paid per video on every record GET and per
item of a history page) and moving a file in and out, local folder vs S3.

S3 runs against moto's standalone server on loopback (a dev dependency), so the transfer
figures measure the client side and loopback HTTP, not a real store's disks or network.

    python benchmarks/blob_stores.py [--size-mb 32] [--links 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' S3 server helper

from tests.s3_server import running_s3_server  # noqa: E402

from reelserve.blobs import FileLinks, UrlSigning, open_blobs  # noqa: E402
from reelserve.core.ports import Blobs  # noqa: E402
from reelserve.settings import Settings  # noqa: E402

KEY = "outputs/ws_bench/gen_bench-1.mp4"


def measure(name: str, blobs: Blobs, source: Path, scratch: Path, links: int) -> None:
    signer = FileLinks(blobs, UrlSigning(b"s" * 32, 7 * 24 * 3600))
    started = time.perf_counter()
    for _ in range(links):
        signer.sign("http://127.0.0.1:8000/api/v1", KEY)
    per_link_us = (time.perf_counter() - started) / links * 1e6
    size_mb = source.stat().st_size / 1e6
    started = time.perf_counter()
    blobs.put_file(KEY, source)
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    blobs.fetch_to(KEY, scratch / "copy.bin")
    get_s = time.perf_counter() - started
    blobs.delete(KEY)
    print(
        f"{name:6} link {per_link_us:8.1f} µs   put {size_mb / put_s:8.1f} MB/s   "
        f"fetch {size_mb / get_s:8.1f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=32)
    parser.add_argument("--links", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_s3_server() as server:
        scratch = Path(tmp)
        source = scratch / "source.bin"
        with source.open("wb") as handle:
            for _ in range(args.size_mb):
                handle.write(bytes(range(256)) * 4096)
        base = Settings(data_dir=scratch / "data")
        measure("local", open_blobs(base), source, scratch, args.links)
        overrides = server.settings_overrides(server.new_bucket())
        measure("s3", open_blobs(base.with_overrides(**overrides)), source, scratch, args.links)


if __name__ == "__main__":
    main()
