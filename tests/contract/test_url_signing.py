"""Signed file links refuse any signature that is not theirs, whatever its characters."""

from __future__ import annotations

import pytest

from reelserve.blobs import UrlSigning


@pytest.mark.parametrize(
    "signature",
    ["é" * 64, "\udcff" * 64, "0" * 64, "", "ä" + "0" * 63],
)
def test_foreign_signatures_are_refused_not_crashed(signature: str) -> None:
    signing = UrlSigning(b"secret", ttl_s=60)
    assert not signing.verify("outputs/ws/gen.mp4", 1_060, signature, now=1_000.0)
