"""Create the bucket named by REELSERVE_BLOB_URL (s3://bucket/prefix) when it is missing.

Run once before the API starts (compose's ``init`` service does); safe to run again. It
reads the same settings as ``reelserve serve`` (REELSERVE_S3_*, AWS_*) and waits up to
``--wait`` seconds for the store to answer, since it may still be starting.
"""

from __future__ import annotations

import argparse
import sys
import time

from reelserve.blobs import open_blobs
from reelserve.blobs.s3 import S3Blobs
from reelserve.settings import from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the store")
    args = parser.parse_args(argv)
    blobs = open_blobs(from_env())
    if not isinstance(blobs, S3Blobs):
        print("REELSERVE_BLOB_URL is not s3://...: files stay in the data folder", file=sys.stderr)
        return 0
    deadline = time.monotonic() + args.wait
    while True:
        try:
            created = blobs.ensure_bucket()
            break
        except Exception as exc:  # the store is still starting, or refuses for good
            if time.monotonic() >= deadline:
                print(f"bucket {blobs.location.bucket}: {exc}", file=sys.stderr)
                return 1
            time.sleep(2)
    state = "created" if created else "already there"
    print(f"bucket {blobs.location.bucket}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
