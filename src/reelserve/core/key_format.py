"""The shape of an API key, checkable without the database.

A key is ``rs_<32 base62 characters>_<6 base62 characters>``: the random part (about 190
bits) and a CRC-32 of everything before the last underscore. A mistyped or truncated key
fails the checksum and is refused before any lookup. CRC-32 catches every single-character
change and every burst of up to 32 bits, which covers the typos that matter.

Keys made before this format (``rs_`` and 43 URL-safe base64 characters) have no checksum;
they are still accepted by shape, and looked up, until they are rotated or revoked.
"""

from __future__ import annotations

import re
import secrets
import string
import zlib
from typing import Final

KEY_PREFIX: Final = "rs_"
BASE62: Final = string.digits + string.ascii_letters
RANDOM_CHARS: Final = 32
CHECKSUM_CHARS: Final = 6  # 62**6 > 2**32, so any CRC-32 fits
# Characters of a key kept in clear (in the database and `keys list`) to name it.
SHOWN_PREFIX_CHARS: Final = 12

_CURRENT: Final = re.compile(
    rf"{KEY_PREFIX}[0-9A-Za-z]{{{RANDOM_CHARS}}}_[0-9A-Za-z]{{{CHECKSUM_CHARS}}}"
)
_LEGACY: Final = re.compile(rf"{KEY_PREFIX}[A-Za-z0-9_-]{{43}}")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_CHARS)


def new_key() -> str:
    body = KEY_PREFIX + "".join(secrets.choice(BASE62) for _ in range(RANDOM_CHARS))
    return f"{body}_{checksum(body)}"


def well_formed(token: str) -> bool:
    """True for a current key with a valid checksum, or a key of the older format."""
    if _CURRENT.fullmatch(token):
        body, _, check = token.rpartition("_")
        return secrets.compare_digest(checksum(body), check)
    return _LEGACY.fullmatch(token) is not None


def shown_prefix(key: str) -> str:
    return key[:SHOWN_PREFIX_CHARS]
