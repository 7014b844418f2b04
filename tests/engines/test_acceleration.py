"""Speed options: validation, the attention backend choice, and CPU leaving outputs alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reelserve.engines.acceleration import (
    AUTO_ORDER,
    MASK_CAPABLE,
    accelerate,
    check_step_cache,
    choose_attention_backend,
    usable_attention_backends,
    validate,
)
from reelserve.engines.libraries import diffusers
from reelserve.engines.speed import MemoryMode, SpeedOptions
from reelserve.engines.tiny import ensure_tiny_checkpoint

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_unknown_memory_mode_names_the_option_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"memory: 'swap' is not one of resident, model_offload"):
        validate("swap", SpeedOptions())


def test_unknown_attention_backend_names_the_option_and_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"speed.attention_backend: 'fast' .*_flash_3.*native"):
        validate("resident", SpeedOptions(attention_backend="fast"))


def test_unknown_step_cache_is_rejected() -> None:
    options = SpeedOptions(step_cache="teacache")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"speed.step_cache: 'teacache' is not one of first_block"):
        validate("resident", options)


@pytest.mark.parametrize("backend", ["auto", "native", "_flash_3", "sage"])
def test_known_options_validate(backend: str) -> None:
    for memory in ("resident", "model_offload", "group_offload"):
        validate(memory, SpeedOptions(attention_backend=backend, step_cache="first_block"))


def test_auto_takes_the_first_usable_backend_in_order() -> None:
    assert choose_attention_backend("auto", set(AUTO_ORDER), takes_masks=False) == AUTO_ORDER[0]
    assert choose_attention_backend("auto", {"native", "flash"}, takes_masks=False) == "flash"
    assert choose_attention_backend("auto", {"native"}, takes_masks=False) == "native"


def test_auto_gives_a_model_that_passes_masks_pytorch_sdpa() -> None:
    assert choose_attention_backend("auto", set(AUTO_ORDER), takes_masks=True) == "native"


def test_a_named_mask_free_backend_is_refused_for_a_masked_model() -> None:
    with pytest.raises(ValueError, match=r"'sage' cannot take attention masks"):
        choose_attention_backend("sage", {"sage", "native"}, takes_masks=True)
    assert choose_attention_backend("sage", {"native"}, takes_masks=False) == "sage"


def test_only_native_attention_is_usable_off_cuda() -> None:
    assert usable_attention_backends(torch.device("cpu")) == {"native"}


def tiny_wan_transformer() -> Any:
    torch.manual_seed(0)
    return diffusers().WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        text_dim=16,
        freq_dim=16,
        ffn_dim=16,
        num_layers=2,
        rope_max_seq_len=32,
    )


def test_first_block_cache_is_accepted_where_diffusers_knows_the_blocks() -> None:
    check_step_cache(tiny_wan_transformer(), "first_block")


def test_mag_cache_needs_calibrated_ratios() -> None:
    with pytest.raises(ValueError, match=r"'mag' needs magnitude ratios calibrated"):
        check_step_cache(tiny_wan_transformer(), "mag")


@pytest.fixture(scope="module")
def ltx2_pipe(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = ensure_tiny_checkpoint("ltx2", tmp_path_factory.mktemp("models") / "ltx2")
    pipe = diffusers().LTX2Pipeline.from_pretrained(str(folder), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render(pipe: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    output = pipe(
        prompt="a dog runs on the beach",
        width=64,
        height=64,
        num_frames=9,
        frame_rate=24.0,
        num_inference_steps=2,
        max_sequence_length=32,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    )
    return np.asarray(output.frames), output.audio.detach().float().numpy()


@pytest.mark.slow
def test_step_cache_on_ltx2_is_refused_with_the_reason(ltx2_pipe: Any) -> None:
    with pytest.raises(ValueError, match=r"LTX2VideoTransformer3DModel.*no cache metadata"):
        accelerate(ltx2_pipe, "resident", SpeedOptions(step_cache="first_block"), "cpu")


@pytest.mark.slow
def test_accelerate_on_cpu_switches_nothing_on_and_keeps_outputs_identical(
    ltx2_pipe: Any,
) -> None:
    frames_before, audio_before = render(ltx2_pipe)
    every_option = SpeedOptions(
        attention_backend="auto", compile_repeated_blocks=True, fp8_storage=True, vae_tiling=True
    )

    applied = accelerate(ltx2_pipe, "group_offload", every_option, "cpu")

    assert applied.memory == "resident"
    assert applied.attention_backend is None
    assert not applied.fp8_storage
    assert not applied.compiled
    assert not applied.vae_tiling
    transformer = ltx2_pipe.transformer
    assert {p.dtype for p in transformer.parameters()} == {torch.float32}
    assert not ltx2_pipe.vae.use_tiling
    assert not hasattr(transformer.transformer_blocks[0], "_compiled_call_impl") or (
        transformer.transformer_blocks[0]._compiled_call_impl is None
    )
    frames_after, audio_after = render(ltx2_pipe)
    np.testing.assert_array_equal(frames_after, frames_before)
    np.testing.assert_array_equal(audio_after, audio_before)


@pytest.mark.gpu
@needs_cuda
def test_accelerate_on_cuda_applies_the_options(tmp_path: Path) -> None:
    folder = ensure_tiny_checkpoint("ltx2", tmp_path / "ltx2")
    pipe = diffusers().LTX2Pipeline.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.bfloat16
    )
    options = SpeedOptions(fp8_storage=True, vae_tiling=True)

    applied = accelerate(pipe, "resident", options, "cuda")

    assert applied.attention_backend in MASK_CAPABLE
    assert applied.compiled
    assert applied.fp8_storage
    assert applied.vae_tiling
    assert torch.float8_e4m3fn in {p.dtype for p in pipe.transformer.parameters()}
    frames, _ = render(pipe)
    assert np.isfinite(frames).all()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("memory", ["model_offload", "group_offload"])
def test_offloaded_pipelines_render_what_a_resident_one_renders(
    tmp_path: Path, memory: MemoryMode
) -> None:
    folder = ensure_tiny_checkpoint("ltx2", tmp_path / "ltx2")
    options = SpeedOptions(attention_backend="native", compile_repeated_blocks=False)
    outputs = []
    for placement in ("resident", memory):
        pipe = diffusers().LTX2Pipeline.from_pretrained(
            str(folder), local_files_only=True, dtype=torch.float32
        )
        pipe.set_progress_bar_config(disable=True)
        accelerate(pipe, placement, options, "cuda")
        assert pipe._execution_device.type == "cuda"
        outputs.append(render(pipe)[0])
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-3)
