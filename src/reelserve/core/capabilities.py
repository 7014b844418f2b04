"""What a worker can do, as it publishes it in its registration info, and the rules the API
applies to it before a task is stored. Pure: the API decides without loading any model.

A worker registers ``info`` with (besides ``profile`` and ``random_weights``):

- ``audio``: ``{mode: {quality: policy}}``, what ``generate_audio: true`` gets in that mode:
  ``native`` (the model makes the sound), ``silent_track`` (a silent AAC track, because the
  profile says so) or ``none`` (the request is refused with 400 naming ``generate_audio``).
- ``missing``: ``{mode: reason}``, the modes its profile names but it cannot serve (weights
  absent, engine not installed). A route needing such a mode is not in its models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reelserve.core.render import Mode

AudioPolicy = Literal["native", "silent_track", "none"]
AUDIO_POLICIES: tuple[AudioPolicy, ...] = ("native", "silent_track", "none")


@dataclass(frozen=True)
class LiveWorker:
    """A worker seen recently, as registered."""

    name: str
    models: list[str]
    info: Mapping[str, Any] = field(default_factory=dict)


def audio_policy(info: Mapping[str, Any], mode: Mode, quality: str) -> str | None:
    """The worker's published policy for ``mode`` at ``quality``; None when it published none."""
    audio = info.get("audio")
    if not isinstance(audio, Mapping):
        return None
    per_quality = audio.get(mode.value)
    if not isinstance(per_quality, Mapping):
        return None
    policy = per_quality.get(quality)
    return policy if isinstance(policy, str) else None


def audio_refusal(
    mode: Mode, quality: str, generate_audio: bool, serving: Iterable[LiveWorker]
) -> str | None:
    """Why ``generate_audio`` cannot be honoured, or None when it can.

    Motion control takes its sound from the reference video (``keep_original_sound``), so
    ``generate_audio`` does not apply there. Any worker serving the route may claim the task,
    so one that publishes ``none`` for the mode is enough to refuse: the client would
    otherwise get a silent clip it did not ask for, depending on which worker took it.
    """
    if not generate_audio or mode is Mode.MOTION:
        return None
    for worker in serving:
        if audio_policy(worker.info, mode, quality) == "none":
            profile = worker.info.get("profile", "?")
            return (
                f"generate_audio: the {quality} {mode.value} model of profile {profile!r} "
                "makes no sound; send generate_audio=false"
            )
    return None


def missing_modes(info: Mapping[str, Any]) -> dict[str, str]:
    missing = info.get("missing")
    if not isinstance(missing, Mapping):
        return {}
    return {str(mode): str(reason) for mode, reason in missing.items()}


def unserved_reason(route: str, modes: Iterable[Mode], workers: Iterable[LiveWorker]) -> str | None:
    """Why live workers do not serve ``route`` (which needs ``modes``), when they said why."""
    reasons: list[str] = []
    for worker in workers:
        if route in worker.models:
            continue
        missing = missing_modes(worker.info)
        needed = set(modes)
        lacking = [
            f"{mode.value} ({missing[mode.value]})"
            for mode in Mode  # in the enum's order, so messages read the same every time
            if mode in needed and mode.value in missing
        ]
        if lacking:
            profile = worker.info.get("profile", "?")
            reasons.append(
                f"worker {worker.name} (profile {profile!r}) cannot serve " + "; ".join(lacking)
            )
    return "; ".join(reasons) or None
