"""Wan engine on tiny checkpoints: text from a text-to-video one, image and first+last frame
from an image-to-video one, silent."""

from __future__ import annotations

import importlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reelserve.core.errors import GenerationFailed
from reelserve.core.render import Mode
from reelserve.engines.profiles import (
    Checkpoint,
    EngineSpec,
    QualityTable,
    RenderSize,
    Sampling,
)
from reelserve.engines.tiny import build_wan_text, ensure_tiny_checkpoint, publish_atomically
from reelserve.engines.wan import WanEngine, checkpoint_modes
from reelserve.engines.weights import ENGINE_CLASSES
from tests.engines.engine_testkit import (
    ProgressLog,
    assert_well_formed_progress,
    make_job,
    pattern,
)

SPEC = EngineSpec(
    family="wan",
    checkpoint=Checkpoint(tiny="wan"),
    quality=QualityTable(
        standard=Sampling(steps=2, guidance_scale=1.0, distilled=True),
        pro=Sampling(steps=3, guidance_scale=4.0),
    ),
    render_size=RenderSize(long_side=64, frames=17),
)


@pytest.fixture(scope="module")
def text_engine(tmp_path_factory: pytest.TempPathFactory) -> WanEngine:
    folder = publish_atomically(tmp_path_factory.mktemp("wan") / "t2v", build_wan_text)
    return WanEngine(name="test/wan-t2v", spec=SPEC, folder=folder, random_weights=True)


@pytest.fixture(scope="module")
def image_engine(tmp_path_factory: pytest.TempPathFactory) -> WanEngine:
    folder = ensure_tiny_checkpoint("wan", tmp_path_factory.mktemp("wan") / "i2v")
    return WanEngine(name="test/wan-i2v", spec=SPEC, folder=folder, random_weights=True)


def test_the_wan_family_is_registered() -> None:
    module_name, class_name = ENGINE_CLASSES["wan"]
    assert getattr(importlib.import_module(module_name), class_name) is WanEngine


def write_checkpoint(folder: Path, pipeline: str, transformer: dict[str, object]) -> Path:
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": pipeline}))
    (folder / "transformer" / "config.json").write_text(json.dumps(transformer))
    return folder


def test_each_checkpoint_kind_serves_its_modes(tmp_path: Path) -> None:
    t2v = write_checkpoint(tmp_path / "t2v", "WanPipeline", {"in_channels": 16})
    i2v_22 = write_checkpoint(tmp_path / "i2v22", "WanImageToVideoPipeline", {"image_dim": None})
    i2v_21 = write_checkpoint(tmp_path / "i2v21", "WanImageToVideoPipeline", {"image_dim": 1280})
    flf2v = write_checkpoint(
        tmp_path / "flf2v",
        "WanImageToVideoPipeline",
        {"image_dim": 1280, "pos_embed_seq_len": 514},
    )
    assert checkpoint_modes(t2v) == {Mode.TEXT}
    assert checkpoint_modes(i2v_22) == {Mode.IMAGE, Mode.FIRST_LAST}
    assert checkpoint_modes(i2v_21) == {Mode.IMAGE}
    assert checkpoint_modes(flf2v) == {Mode.FIRST_LAST}


def test_another_pipeline_class_is_refused(tmp_path: Path) -> None:
    other = write_checkpoint(tmp_path / "ltx", "LTX2Pipeline", {})
    with pytest.raises(GenerationFailed, match=r"LTX2Pipeline; the wan engine loads"):
        checkpoint_modes(other)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("engine_name", "mode"),
    [("text_engine", Mode.TEXT), ("image_engine", Mode.IMAGE), ("image_engine", Mode.FIRST_LAST)],
)
def test_render_returns_silent_frames_for_the_job(
    engine_name: str, mode: Mode, request: pytest.FixtureRequest
) -> None:
    engine: WanEngine = request.getfixturevalue(engine_name)
    job = make_job(mode)
    progress = ProgressLog()

    result = engine.render(job, progress)

    assert result.frames.dtype == np.uint8
    # 64 px on the long side at 16:9, 17 frames (4k+1 for Wan's VAE).
    assert result.frames.shape == (17, 36, 64, 3)
    assert result.frames.std() > 0
    assert len(result.frames) / result.fps == pytest.approx(job.num_frames / job.fps)
    assert result.audio is None
    assert_well_formed_progress(progress.values)


@pytest.mark.slow
def test_a_checkpoint_refuses_modes_it_was_not_made_for(
    text_engine: WanEngine, image_engine: WanEngine
) -> None:
    with pytest.raises(GenerationFailed, match=r"renders text-to-video, not image-to-video"):
        text_engine.render(make_job(Mode.IMAGE), ProgressLog())
    with pytest.raises(GenerationFailed, match=r"not text-to-video"):
        image_engine.render(make_job(Mode.TEXT), ProgressLog())


@pytest.mark.slow
def test_same_seed_same_video_and_the_end_image_reaches_the_model(
    image_engine: WanEngine,
) -> None:
    seen: list[torch.Tensor] = []

    def record(module: torch.nn.Module, args: object, kwargs: dict[str, torch.Tensor]) -> None:
        seen.append(kwargs["hidden_states"].clone())

    job = make_job(Mode.FIRST_LAST, seed=5)
    hook = image_engine.denoiser().register_forward_pre_hook(record, with_kwargs=True)
    try:
        first = image_engine.render(job, ProgressLog()).frames
        calls = len(seen)
        again = image_engine.render(job, ProgressLog()).frames
        image_engine.render(replace(job, end_image=pattern(360, 640, seed=9)), ProgressLog())
    finally:
        hook.remove()
    assert np.array_equal(first, again)
    # The tiny random VAE damps the end frame's latents below what survives uint8 frames, so
    # compare what the denoiser is given: the noise and the first-frame condition are equal,
    # the end-frame condition is not.
    assert torch.equal(seen[0], seen[calls])
    assert not torch.equal(seen[0], seen[2 * calls])


@pytest.mark.slow
def test_warm_up_renders_and_leaves_jobs_unchanged(text_engine: WanEngine) -> None:
    job = make_job(Mode.TEXT, seed=3)
    before = text_engine.render(job, ProgressLog()).frames
    text_engine.warm_up(render=True)
    assert np.array_equal(text_engine.render(job, ProgressLog()).frames, before)
