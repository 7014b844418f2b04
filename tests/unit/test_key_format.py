"""API key format: a checksum that catches typos without the database."""

from __future__ import annotations

import secrets

from reelserve.core.key_format import BASE62, KEY_PREFIX, new_key, well_formed


def test_new_keys_are_well_formed_and_distinct() -> None:
    keys = {new_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith(KEY_PREFIX)
        assert well_formed(key)


def test_every_single_character_typo_fails_the_checksum() -> None:
    key = new_key()
    for index in range(len(KEY_PREFIX), len(key)):
        if key[index] == "_":
            continue
        for replacement in BASE62:
            if replacement != key[index]:
                typo = key[:index] + replacement + key[index + 1 :]
                assert not well_formed(typo), (index, replacement)


def test_truncated_or_extended_keys_are_malformed() -> None:
    key = new_key()
    assert not well_formed(key[:-1])
    assert not well_formed(key + "0")
    assert not well_formed(key.replace("rs_", "rx_", 1))
    assert not well_formed("")


def test_keys_of_the_older_format_are_accepted_by_shape() -> None:
    legacy = KEY_PREFIX + secrets.token_urlsafe(32)
    assert len(legacy) == 46
    assert well_formed(legacy)
    assert not well_formed(legacy[:-1])
