"""The pure rules over workers' registrations: audio refusals and why a model is unserved."""

from __future__ import annotations

from reelserve.core.capabilities import LiveWorker, audio_policy, audio_refusal, unserved_reason
from reelserve.core.render import Mode

ROUTE = "kling-ai/kling-v2.6"


def worker(name: str, policy: str | None, **info: object) -> LiveWorker:
    audio = {"text-to-video": {"standard": policy, "pro": "native"}} if policy else {}
    return LiveWorker(name, [ROUTE], {"profile": name, "audio": audio, **info})


def test_a_policy_is_read_per_mode_and_quality() -> None:
    silent = worker("wan", "none")
    assert audio_policy(silent.info, Mode.TEXT, "standard") == "none"
    assert audio_policy(silent.info, Mode.TEXT, "pro") == "native"
    assert audio_policy(silent.info, Mode.IMAGE, "standard") is None
    assert audio_policy({"audio": "garbage"}, Mode.TEXT, "standard") is None


def test_only_a_published_none_refuses_and_only_when_sound_is_asked() -> None:
    silent, track, unknown = worker("wan", "none"), worker("t", "silent_track"), worker("x", None)
    refusal = audio_refusal(Mode.TEXT, "standard", True, [track, silent])
    assert refusal is not None
    assert refusal.startswith("generate_audio: ")
    assert "'wan'" in refusal
    assert audio_refusal(Mode.TEXT, "standard", False, [silent]) is None
    assert audio_refusal(Mode.TEXT, "pro", True, [silent]) is None
    assert audio_refusal(Mode.TEXT, "standard", True, [track, unknown]) is None
    # Motion control's sound is the reference video's, whatever the model.
    assert audio_refusal(Mode.MOTION, "standard", True, [silent]) is None


def test_unserved_reason_names_the_missing_modes_of_the_route() -> None:
    lacking = LiveWorker(
        "gpu0",
        ["kling-ai/motion-control-v2.6"],
        {"profile": "ltx2", "missing": {"text-to-video": "no weights", "x": "other"}},
    )
    reason = unserved_reason(ROUTE, {Mode.MOTION, Mode.TEXT}, [lacking])
    assert reason == "worker gpu0 (profile 'ltx2') cannot serve text-to-video (no weights)"
    assert unserved_reason(ROUTE, {Mode.MOTION}, [lacking]) is None
    serving = LiveWorker("gpu1", [ROUTE], {"missing": {"text-to-video": "no weights"}})
    assert unserved_reason(ROUTE, {Mode.TEXT}, [serving]) is None
