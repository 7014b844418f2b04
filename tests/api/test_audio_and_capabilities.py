"""What workers can serve, as they register it, decides create answers without loading
models: ``generate_audio`` against the profile's audio policy (400 or a silent track), a
503 and ``/readyz`` saying why a model has no worker, and motion control's reference sound.

The FakeEngine stands in for the GPU models (they cannot run here); ``sound=False`` makes it
silent like the Wan models. Everything else is the real app, store, worker and MP4 code."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from reelserve.media import probe_output, read_audio
from reelserve.store import SqlStore
from tests.api.conftest import MODEL, MOTION_MODEL, Service, ServiceFactory, assert_error
from tests.fixtures import CLIP_WITH_AUDIO, LANDSCAPE_PNG


def audio_table(policy: str) -> dict[str, Any]:
    modes = ("text-to-video", "image-to-video", "first-last-frame")
    return {"audio": {mode: {"standard": policy, "pro": policy} for mode in modes}}


def download(service: Service, record: dict[str, Any], path: Path) -> Path:
    response = service.client.get(record["data"]["video"]["url"])
    assert response.status_code == 200
    path.write_bytes(response.content)
    return path


def test_a_silent_profile_refuses_generate_audio_with_a_400(make_service: ServiceFactory) -> None:
    service = make_service(sound=False, capabilities=audio_table("none") | {"profile": "wan"})
    refused = service.create({"prompt": "a quiet lake"})
    assert_error(refused, 400, "VIDEO_GENERATION_INVALID_INPUT", "generate_audio")
    assert "makes no sound" in refused.json()["message"]
    assert "'wan'" in refused.json()["message"]
    assert service.credits()["total"] == 1000  # nothing stored, nothing reserved

    silent = service.create({"prompt": "a quiet lake", "generate_audio": False}).json()
    done = service.wait(silent["id"])
    assert done["status"] == "COMPLETED", done
    assert done["data"]["video"]["has_audio"] is False


def test_a_silent_track_profile_answers_with_silence(
    make_service: ServiceFactory, tmp_path: Path
) -> None:
    service = make_service(sound=False, capabilities=audio_table("silent_track"))
    record = service.create({"prompt": "a quiet lake"}).json()
    done = service.wait(record["id"])
    assert done["status"] == "COMPLETED", done
    assert done["data"]["video"]["has_audio"] is True
    path = download(service, done, tmp_path / "silent.mp4")
    info = probe_output(path)
    assert (info.audio_codec, info.audio_channels, info.audio_sample_rate) == ("aac", 2, 48_000)
    track = read_audio(path)
    assert track is not None
    pcm, rate = track
    assert abs(pcm.shape[1] / rate - info.duration) < 0.05
    assert float(np.abs(pcm).max()) < 1e-3


def test_native_audio_is_kept_and_dropped_on_request(make_service: ServiceFactory) -> None:
    service = make_service(capabilities=audio_table("native"))
    with_sound = service.wait(service.create({"prompt": "rain"}).json()["id"])
    without = service.wait(service.create({"prompt": "rain", "generate_audio": False}).json()["id"])
    assert with_sound["data"]["video"]["has_audio"] is True
    assert without["data"]["video"]["has_audio"] is False


def test_motion_control_ignores_the_audio_policy(make_service: ServiceFactory) -> None:
    service = make_service(sound=False, capabilities=audio_table("none"))
    with LANDSCAPE_PNG.open("rb") as image, CLIP_WITH_AUDIO.open("rb") as video:
        response = service.client.post(
            f"/api/v1/generation/{MOTION_MODEL}",
            headers=service.auth,
            files={"image_url": ("c.png", image), "video_url": ("ref.mp4", video)},
        )
    assert response.status_code == 200, response.text


def _motion(service: Service, keep_original_sound: bool) -> dict[str, Any]:
    with LANDSCAPE_PNG.open("rb") as image, CLIP_WITH_AUDIO.open("rb") as video:
        response = service.client.post(
            f"/api/v1/generation/{MOTION_MODEL}",
            headers=service.auth,
            data={"keep_original_sound": str(keep_original_sound).lower()},
            files={"image_url": ("c.png", image), "video_url": ("ref.mp4", video)},
        )
    assert response.status_code == 200, response.text
    done = service.wait(response.json()["id"])
    assert done["status"] == "COMPLETED", done
    return done


def _dominant_hz(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm[0]))
    return float(np.fft.rfftfreq(pcm.shape[1], 1 / rate)[int(np.argmax(spectrum))])


def test_keep_original_sound_copies_the_reference_track(service: Service, tmp_path: Path) -> None:
    """The 3.5 s reference has a 440 Hz stereo tone at 44.1 kHz: the output carries that
    tone resampled to 48 kHz stereo, exactly as long as the video."""
    done = _motion(service, keep_original_sound=True)
    path = download(service, done, tmp_path / "motion.mp4")
    info = probe_output(path)
    assert (info.audio_codec, info.audio_channels, info.audio_sample_rate) == ("aac", 2, 48_000)
    track = read_audio(path)
    assert track is not None
    pcm, rate = track
    assert rate == 48_000
    assert pcm.shape[0] == 2
    assert abs(pcm.shape[1] / rate - info.duration) < 0.03
    assert abs(info.duration - 3.5) < 0.05
    assert abs(_dominant_hz(pcm, rate) - 440.0) < 5.0
    with av.open(str(CLIP_WITH_AUDIO)) as reference:
        assert reference.streams.audio[0].codec_context.sample_rate == 44_100


def test_keep_original_sound_false_drops_the_track(service: Service, tmp_path: Path) -> None:
    done = _motion(service, keep_original_sound=False)
    assert done["data"]["video"]["has_audio"] is False
    assert not probe_output(download(service, done, tmp_path / "m.mp4")).has_audio


def _short_mono_reference(path: Path, seconds: float, audio_seconds: float, rate: int) -> None:
    """A clip whose mono sound (660 Hz) stops long before its picture does."""
    fps = 24
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.codec_context.layout = "mono"
        for index in range(round(seconds * fps)):
            pixels = np.full((240, 320, 3), (index * 7) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        t = np.arange(round(audio_seconds * rate)) / rate
        wave = (0.5 * np.sin(2 * np.pi * 660.0 * t)).astype(np.float32)[None, :]
        for start in range(0, wave.shape[1], 1024):
            chunk = np.ascontiguousarray(wave[:, start : start + 1024])
            sound = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            sound.sample_rate, sound.pts, sound.time_base = rate, start, Fraction(1, rate)
            container.mux(audio.encode(sound))
        container.mux(audio.encode(None))


def test_a_short_mono_reference_track_is_resampled_upmixed_and_padded(
    service: Service, tmp_path: Path
) -> None:
    reference = tmp_path / "short-sound.mp4"
    _short_mono_reference(reference, seconds=3.2, audio_seconds=1.0, rate=22_050)
    with LANDSCAPE_PNG.open("rb") as image, reference.open("rb") as video:
        response = service.client.post(
            f"/api/v1/generation/{MOTION_MODEL}",
            headers=service.auth,
            files={"image_url": ("c.png", image), "video_url": ("ref.mp4", video)},
        )
    assert response.status_code == 200, response.text
    done = service.wait(response.json()["id"])
    assert done["status"] == "COMPLETED", done
    path = download(service, done, tmp_path / "out.mp4")
    info = probe_output(path)
    assert abs(info.duration - 3.2) < 0.05
    assert (info.audio_channels, info.audio_sample_rate) == (2, 48_000)
    track = read_audio(path)
    assert track is not None
    pcm, rate = track
    assert abs(pcm.shape[1] / rate - info.duration) < 0.03
    np.testing.assert_allclose(pcm[0], pcm[1], atol=0.01)  # mono copied to both sides
    sounding, padded = pcm[:, : int(0.9 * rate)], pcm[:, int(1.2 * rate) :]
    assert abs(_dominant_hz(sounding, rate) - 660.0) < 5.0
    assert float(np.sqrt(np.mean(sounding**2))) > 0.1
    assert float(np.abs(padded).max()) < 0.01


def _remote(store: SqlStore, worker_id: str, models: list[str], info: dict[str, Any]) -> None:
    store.register_worker(worker_id, f"gpu-{worker_id}", models, info)


def test_503_and_readyz_say_why_a_model_has_no_worker(make_service: ServiceFactory) -> None:
    service = make_service(worker=False, register_remote_worker=False)
    missing = {"text-to-video": "checkpoint owner/model is not in /models/hub/owner--model"}
    _remote(service.store, "wrk_a", [MOTION_MODEL], {"profile": "ltx2", "missing": missing})
    refused = service.create({"prompt": "a cat"})
    assert_error(refused, 503, "VIDEO_GENERATION_PROVIDER_UNAVAILABLE", "model")
    message = refused.json()["message"]
    assert "worker gpu-wrk_a (profile 'ltx2') cannot serve text-to-video" in message
    assert "owner/model is not in" in message

    ready = service.client.get("/readyz").json()
    assert set(ready["models"]) == {MOTION_MODEL}
    assert "text-to-video (checkpoint owner/model" in ready["unserved"][MODEL]
    assert MOTION_MODEL not in ready["unserved"]


def test_readyz_without_workers_lists_every_model(make_service: ServiceFactory) -> None:
    service = make_service(worker=False, register_remote_worker=False)
    ready = service.client.get("/readyz").json()
    assert ready["unserved"] == {MODEL: "no worker serves it", MOTION_MODEL: "no worker serves it"}
    refused = service.create({"prompt": "a cat"})
    assert_error(refused, 503, "VIDEO_GENERATION_PROVIDER_UNAVAILABLE", "model")
    assert "(" not in refused.json()["message"]  # no reason is known, none is made up


def test_one_silent_worker_among_several_is_enough_to_refuse(
    make_service: ServiceFactory,
) -> None:
    service = make_service(worker=False, register_remote_worker=False)
    _remote(service.store, "wrk_a", [MODEL], {"profile": "ltx2"} | audio_table("native"))
    _remote(service.store, "wrk_b", [MODEL], {"profile": "wan"} | audio_table("none"))
    refused = service.create({"prompt": "a cat", "quality": "pro"})
    assert_error(refused, 400, "VIDEO_GENERATION_INVALID_INPUT", "generate_audio")
    assert "pro text-to-video model of profile 'wan'" in refused.json()["message"]
    service.store.remove_worker("wrk_b")
    assert service.create({"prompt": "a cat", "quality": "pro"}).status_code == 200
