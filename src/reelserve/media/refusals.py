"""The shape every input refusal takes: ``"<field>: <rule>"`` with ``field`` set."""

from __future__ import annotations

from reelserve.core.errors import InputTooLarge, InvalidInput


def refusal(field: str, rule: str) -> InvalidInput:
    return InvalidInput(f"{field}: {rule}", field=field)


def describe_bytes(count: int) -> str:
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000} MB"
    return f"{count} bytes"


def too_large(field: str, max_bytes: int) -> InputTooLarge:
    return InputTooLarge(f"{field}: file must be at most {describe_bytes(max_bytes)}", field=field)
