"""Standard Webhooks signing and the retry schedule (pure functions)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from reelserve.core.webhooks import new_secret, retry_delay, sign, signed_headers

README = Path(__file__).parents[2] / "README.md"


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The example of the Standard Webhooks reference libraries' test suites.
    assert (
        sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_secrets_are_whsec_base64_of_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", first)


def _readme_verify() -> Any:
    block = re.search(r"```python\n(import base64.*?)```", README.read_text(), re.S)
    assert block is not None, "README has no signature check example"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)  # the documented example, run as documented
    return namespace["verify"]


def test_the_readme_example_verifies_our_signatures() -> None:
    verify = _readme_verify()
    current, previous = new_secret(), new_secret()
    body = b'{"id":"gen_1","status":"COMPLETED"}'
    headers = signed_headers([current, previous], "msg_1", int(time.time()), body)
    assert verify(current, headers, body)
    assert verify(previous, headers, body)  # both secrets sign during a rotation
    assert not verify(new_secret(), headers, body)
    assert not verify(current, headers, body.replace(b"COMPLETED", b"FAILED"))
    stale = signed_headers([current], "msg_1", int(time.time()) - 3600, body)
    assert not verify(current, stale, body)


def test_retry_delays_double_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    assert [retry_delay(n, 10, 3600, 0.999999) for n in (1, 2, 3)] == pytest.approx(
        [10, 20, 40], rel=1e-5
    )
    assert [retry_delay(n, 10, 3600, 0.0) for n in (1, 2, 3)] == [5, 10, 20]
    assert retry_delay(30, 10, 3600, 0.5) == 2700  # capped at an hour, then jittered
