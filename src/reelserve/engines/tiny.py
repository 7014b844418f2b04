"""Tiny random-weight checkpoints of the real pipelines, built entirely offline.

Each builder instantiates the real diffusers/transformers classes from small configs (seeded,
so a build is reproducible), and saves them with ``save_pretrained`` in the layout the
production loaders read. The engines then load them with ``from_pretrained(...,
local_files_only=True)`` exactly as they load real checkpoints. Their output is noise.

Builds go to a hidden sibling folder that is renamed into place, so a reader never sees a
half-written checkpoint; when two processes build at once, the first rename wins and the
other process uses the winner's folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reelserve.engines.libraries import diffusers, transformers
from reelserve.engines.profiles import EngineFamily
from reelserve.engines.weights import TINY_MARKER

log = logging.getLogger(__name__)

# Written last into every tiny checkpoint: marks it complete and says what it is.
MARKER = TINY_MARKER
BUILD_VERSION = 1

# A word-level vocabulary is enough for random weights: prompts only need to tokenize
# deterministically, and unknown words map to the unknown token.
_VOCABULARY = """
a an the and or of in on at to with from by over under into through near behind above
is are was walks runs jumps flies swims dances turns looks smiles waves sits stands falls
man woman child girl boy person people dog cat bird horse fish robot car train boat plane
tree flower grass forest mountain river lake sea ocean beach sky cloud rain snow sun moon
star city street road house room window door light fire water wind night day morning
evening red orange yellow green blue purple pink black white gray golden silver bright dark
slow fast small big tall old young happy calm camera shot close wide aerial view zoom pan
tracking cinematic realistic animation style video scene motion reference character
"""
_WORDS = _VOCABULARY.split()

_LTX2_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
_GEMMA_IMAGE_TOKENS = ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]
_UMT5_SPECIALS = ["<pad>", "</s>", "<unk>"]

_build_lock = threading.Lock()


def ensure_tiny_checkpoint(family: EngineFamily, folder: Path) -> Path:
    """The tiny checkpoint for ``family`` at ``folder``, built first if it is not there."""
    if is_complete(folder):
        return folder
    # Builds seed torch's global generator, so two in one process must not interleave.
    with _build_lock:
        return publish_atomically(folder, _BUILDERS[family])


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def publish_atomically(folder: Path, build: Callable[[Path], None]) -> Path:
    """Run ``build`` into a staging folder and rename it to ``folder`` unless one exists."""
    if is_complete(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".building", dir=folder.parent)
    )
    # mkdtemp creates 0700; the published checkpoint is read by workers running as other users.
    staging.chmod(0o755)
    try:
        build(staging)
        try:
            # Atomic on POSIX; fails when another process already published a non-empty folder.
            os.rename(staging, folder)
        except OSError:
            if not is_complete(folder):
                raise
            log.info("tiny checkpoint %s was built concurrently; using that one", folder)
        else:
            log.info("built tiny checkpoint %s (random weights)", folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_marker(folder: Path, family: EngineFamily) -> None:
    marker = {
        "family": family,
        "random_weights": True,
        "build_version": BUILD_VERSION,
        "note": "Tiny model with random weights, built locally for tests: its output is noise.",
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _word_level_tokenizer(
    specials: list[str], template: str, template_tokens: list[str], max_length: int, **named: str
) -> Any:
    """A fast tokenizer over ``_WORDS`` with ``specials`` at ids 0, 1, ...

    ``template`` is the post-processing template (``$A`` is the text) that adds the special
    tokens the encoder was trained with; ``named`` are the tokenizer's special-token roles.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {token: index for index, token in enumerate([*specials, *_WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=named["unk_token"]))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(token, vocab[token]) for token in template_tokens]
    )
    return transformers().PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=max_length, **named
    )


def gemma_style_tokenizer(max_length: int) -> Any:
    """A word-level tokenizer with Gemma's special tokens, for models with random weights."""
    # Gemma's layout: pad 0, eos 1, bos 2 (its config defaults), and a BOS before each prompt.
    return _word_level_tokenizer(
        [*_LTX2_SPECIALS, *_GEMMA_IMAGE_TOKENS],
        template="<bos> $A",
        template_tokens=["<bos>"],
        max_length=max_length,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
    )


def umt5_style_tokenizer(max_length: int) -> Any:
    """A word-level tokenizer with UMT5's special tokens, for models with random weights."""
    return _word_level_tokenizer(
        _UMT5_SPECIALS,
        template="$A </s>",
        template_tokens=["</s>"],
        max_length=max_length,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def build_ltx2(folder: Path) -> None:
    """LTX-2: video transformer with its audio stream, video and audio VAEs, vocoder, Gemma 3."""
    dl, tf, ltx2 = diffusers(), transformers(), diffusers("pipelines.ltx2")

    tokenizer = gemma_style_tokenizer(max_length=64)
    image_token_ids = [len(_LTX2_SPECIALS) + i for i in range(len(_GEMMA_IMAGE_TOKENS))]
    text_width = 32  # must equal the connectors' caption width; narrower fails in the connectors
    text_layers = 2

    torch.manual_seed(0)
    text_encoder = tf.Gemma3ForConditionalGeneration(
        tf.Gemma3Config(
            text_config=tf.Gemma3TextConfig(
                vocab_size=len(_LTX2_SPECIALS) + len(_GEMMA_IMAGE_TOKENS) + len(_WORDS),
                hidden_size=text_width,
                intermediate_size=64,
                num_hidden_layers=text_layers,
                num_attention_heads=2,
                num_key_value_heads=1,
                head_dim=16,
                query_pre_attn_scalar=16,
                max_position_embeddings=128,
                sliding_window=64,
            ),
            # The vision tower is unused for prompts but part of the class; 4 patches per side
            # pooled to 2x2 = mm_tokens_per_image.
            vision_config=tf.SiglipVisionConfig(
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=8,
                patch_size=2,
            ),
            mm_tokens_per_image=4,
            boi_token_index=image_token_ids[0],
            eoi_token_index=image_token_ids[1],
            image_token_index=image_token_ids[2],
        )
    ).eval()

    torch.manual_seed(0)
    connectors = ltx2.LTX2TextConnectors(
        caption_channels=text_width,
        # The connectors read every hidden state of the encoder: embeddings + each layer.
        text_proj_in_factor=text_layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_double_precision=False,
        rope_type="split",
    )

    torch.manual_seed(0)
    transformer = dl.LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        caption_channels=text_width,
        rope_double_precision=False,
        rope_type="split",
    )

    torch.manual_seed(0)
    # Pixel-shuffle patches of 4 plus one spatio-temporal downsampling: 8x spatial, 2x temporal
    # compression. A 64 px frame is 8x8 latent tokens, which keeps the transformer cheap.
    vae = dl.AutoencoderKLLTX2Video(
        latent_channels=4,
        block_out_channels=(8,),
        decoder_block_out_channels=(8,),
        layers_per_block=(1,),
        decoder_layers_per_block=(1, 1),
        spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,),
        decoder_inject_noise=(False, False),
        downsample_type=("spatial",),
        upsample_residual=(False,),
        upsample_factor=(1,),
        patch_size=4,
        patch_size_t=1,
        decoder_causal=False,
    )

    torch.manual_seed(0)
    audio_vae = dl.AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        resolution=32,
        latent_channels=2,
        sample_rate=16000,
        mel_hop_length=160,
        mel_bins=8,
    )

    torch.manual_seed(0)
    # 100 mel frames per second (16 kHz / hop 160) upsampled 4 * 4 * 10 = 160 times gives real
    # 16 kHz audio, so the rate in the config matches the samples the vocoder produces.
    vocoder = ltx2.LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[8, 8, 20],
        upsample_factors=[4, 4, 10],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        output_sampling_rate=16000,
    )

    pipeline = dl.LTX2Pipeline(
        scheduler=dl.FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )
    pipeline.save_pretrained(folder)
    _write_marker(folder, "ltx2")


def build_wan_animate_2(folder: Path) -> None:
    """Wan-Animate-2: UMT5 text encoder, 1280-wide CLIP image encoder, Wan VAE, transformer."""
    dl, tf = diffusers(), transformers()

    text_length = 32
    tokenizer = umt5_style_tokenizer(max_length=text_length)
    text_width = 32  # the transformer's text_dim

    torch.manual_seed(0)
    text_encoder = tf.UMT5EncoderModel(
        tf.UMT5Config(
            vocab_size=len(_UMT5_SPECIALS) + len(_WORDS),
            d_model=text_width,
            d_kv=16,
            d_ff=64,
            num_layers=2,
            num_heads=2,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=16,
        )
    ).eval()

    torch.manual_seed(0)
    # The transformer's image projection is fixed at CLIP ViT-H's 1280 features and the
    # pipeline resizes to 224 px; one layer keeps it small (the pipeline reads the
    # penultimate hidden state, which is then the embeddings).
    image_encoder = tf.CLIPVisionModel(
        tf.CLIPVisionConfig(
            hidden_size=1280,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=224,
            patch_size=32,
        )
    ).eval()

    torch.manual_seed(0)
    # Three downsamplings (two of them temporal): the 8x spatial / 4x temporal compression
    # the transformer's block mask assumes.
    latent_channels = 16
    vae = dl.AutoencoderKLWan(
        base_dim=3,
        z_dim=latent_channels,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )

    torch.manual_seed(0)
    transformer = dl.WanAnimate2Transformer3DModel(
        text_len=text_length,
        # noise latents + (i2v mask + conditioning latents)
        in_dim=2 * latent_channels + 4,
        dim=24,
        ffn_dim=32,
        freq_dim=32,
        text_dim=text_width,
        out_dim=latent_channels,
        num_heads=2,
        num_layers=2,
    )

    pipeline = dl.WanAnimate2ModularPipeline(blocks=dl.WanAnimate2Blocks())
    pipeline.update_components(
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        image_encoder=image_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=dl.FlowMatchEulerDiscreteScheduler(shift=5.0),
    )
    pipeline.save_pretrained(str(folder), overwrite_modular_index=True)
    _clear_staging_paths(folder)
    _write_marker(folder, "wan_animate")


def _tiny_wan_vae() -> Any:
    torch.manual_seed(0)
    return diffusers().AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def _tiny_umt5(width: int) -> Any:
    tf = transformers()
    torch.manual_seed(0)
    return tf.UMT5EncoderModel(
        tf.UMT5Config(
            vocab_size=len(_UMT5_SPECIALS) + len(_WORDS),
            d_model=width,
            d_kv=16,
            d_ff=64,
            num_layers=2,
            num_heads=2,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=16,
        )
    ).eval()


def _tiny_wan_transformer(in_channels: int, text_width: int) -> Any:
    torch.manual_seed(0)
    return diffusers().WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=16,
        text_dim=text_width,
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        rope_max_seq_len=32,
    )


def build_wan_text(folder: Path) -> None:
    """Wan text-to-video (Wan2.2 T2V layout): ``WanPipeline``, UMT5, Wan VAE, transformer."""
    dl = diffusers()
    text_width = 32
    pipeline = dl.WanPipeline(
        tokenizer=umt5_style_tokenizer(max_length=32),
        text_encoder=_tiny_umt5(text_width),
        vae=_tiny_wan_vae(),
        transformer=_tiny_wan_transformer(in_channels=16, text_width=text_width),
        scheduler=dl.FlowMatchEulerDiscreteScheduler(shift=5.0),
    )
    pipeline.save_pretrained(folder)
    _write_marker(folder, "wan")


def build_wan_image(folder: Path) -> None:
    """Wan image-to-video (Wan2.2 I2V layout, no CLIP encoder): image and first+last frame."""
    dl = diffusers()
    text_width = 32
    pipeline = dl.WanImageToVideoPipeline(
        tokenizer=umt5_style_tokenizer(max_length=32),
        text_encoder=_tiny_umt5(text_width),
        vae=_tiny_wan_vae(),
        # noise latents + (frame mask + conditioning latents)
        transformer=_tiny_wan_transformer(in_channels=16 + 4 + 16, text_width=text_width),
        scheduler=dl.FlowMatchEulerDiscreteScheduler(shift=5.0),
    )
    pipeline.save_pretrained(folder)
    _write_marker(folder, "wan")


def _clear_staging_paths(folder: Path) -> None:
    """Drop the staging path that ``save_pretrained`` records for each modular component.

    Loading from a local folder resolves each component against that folder's own files, so
    the index needs no path, and must not keep the temporary name it was written under.
    """
    index_path = folder / "modular_model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    for entry in index.values():
        if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], dict):
            entry[2]["pretrained_model_name_or_path"] = None
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


_BUILDERS: dict[EngineFamily, Callable[[Path], None]] = {
    "ltx2": build_ltx2,
    "wan_animate": build_wan_animate_2,
    # A tiny "wan" checkpoint is an image-to-video one (image and first+last frame); tests
    # build the text-to-video one with build_wan_text.
    "wan": build_wan_image,
}
