"""Tiny checkpoints: built offline, published atomically, loadable by the production loaders."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
import torch

from reelserve.core.render import Engine, Mode
from reelserve.engines.libraries import diffusers
from reelserve.engines.tiny import MARKER, build_ltx2, is_complete, publish_atomically

# Builds and runs (tiny) model pipelines.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_dir(models_dir: Path, engines: dict[Mode, Engine]) -> Path:
    """The session's tiny checkpoints (the ``engines`` fixture builds them)."""
    return models_dir / "tiny"


def test_each_checkpoint_is_published_complete_and_labelled(tiny_dir: Path) -> None:
    assert sorted(path.name for path in tiny_dir.iterdir()) == ["ltx2", "wan_animate_2"]
    for folder in tiny_dir.iterdir():
        marker = json.loads((folder / MARKER).read_text())
        assert marker["random_weights"] is True
    assert (tiny_dir / "ltx2" / "model_index.json").is_file()
    index = (tiny_dir / "wan_animate_2" / "modular_model_index.json").read_text()
    assert ".building" not in index, "the staging folder's name leaked into the index"


def test_ltx2_loads_with_from_pretrained(tiny_dir: Path) -> None:
    pipe = diffusers().LTX2Pipeline.from_pretrained(tiny_dir / "ltx2", local_files_only=True)
    tokenizer = pipe.tokenizer
    assert [tokenizer.pad_token, tokenizer.eos_token, tokenizer.bos_token, tokenizer.unk_token] == [
        "<pad>",
        "<eos>",
        "<bos>",
        "<unk>",
    ]
    ids = tokenizer("A robot zorblax").input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert ids[-1] == tokenizer.unk_token_id
    # The connectors read the text encoder's hidden states at its own width.
    hidden = pipe.text_encoder.config.text_config.hidden_size
    assert hidden == pipe.connectors.config.caption_channels == 32
    # The vocoder's output rate is the rate of the samples it actually produces.
    mel_frames_per_s = pipe.audio_vae.config.sample_rate / pipe.audio_vae.config.mel_hop_length
    upsampling = math.prod(pipe.vocoder.config.upsample_factors)
    assert mel_frames_per_s * upsampling == pipe.vocoder.config.output_sampling_rate


def test_wan_animate_2_loads_with_the_modular_loader(tiny_dir: Path) -> None:
    pipe = diffusers().ModularPipeline.from_pretrained(
        str(tiny_dir / "wan_animate_2"), local_files_only=True
    )
    pipe.load_components(dtype=torch.float32)
    assert type(pipe).__name__ == "WanAnimate2ModularPipeline"
    tokenizer = pipe.tokenizer
    assert [tokenizer.pad_token, tokenizer.eos_token, tokenizer.unk_token] == [
        "<pad>",
        "</s>",
        "<unk>",
    ]
    assert tokenizer("a robot").input_ids[-1] == tokenizer.eos_token_id
    assert pipe.text_encoder.config.d_model == pipe.transformer.config.text_dim
    assert pipe.image_encoder.config.hidden_size == 1280
    assert pipe.image_encoder.config.image_size == 224


def test_a_rebuild_is_identical(tiny_dir: Path, tmp_path: Path) -> None:
    rebuilt = publish_atomically(tmp_path / "ltx2", build_ltx2)
    for component in ("transformer", "vae", "vocoder", "connectors"):
        weights = f"{component}/diffusion_pytorch_model.safetensors"
        assert (rebuilt / weights).read_bytes() == (tiny_dir / "ltx2" / weights).read_bytes()
    text = "text_encoder/model.safetensors"
    assert (rebuilt / text).read_bytes() == (tiny_dir / "ltx2" / text).read_bytes()


def test_racing_builders_publish_one_folder(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint"
    both_built = threading.Barrier(2)

    def build(staging: Path) -> None:
        (staging / "weights.bin").write_bytes(threading.current_thread().name.encode())
        both_built.wait(timeout=10)  # neither publishes before both have built
        (staging / MARKER).write_text("{}")

    results: list[Path] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            results.append(publish_atomically(folder, build))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish, name=f"builder-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert results == [folder, folder]
    assert is_complete(folder)
    assert (folder / "weights.bin").read_bytes() in {b"builder-0", b"builder-1"}
    assert [path.name for path in tmp_path.iterdir()] == ["checkpoint"], "staging left behind"


def test_a_published_checkpoint_is_not_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / MARKER).write_text("{}")

    def build(staging: Path) -> None:
        raise AssertionError("must not build")

    assert publish_atomically(folder, build) == folder
