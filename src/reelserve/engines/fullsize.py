"""The production models' architectures at full size, for speed measurements with random weights.

A model with random weights at the real architecture's size does the same arithmetic as the
real checkpoint, so speed (and memory) can be measured without downloading anything. The
numbers below are transcribed from the published configurations; each config names its source.
Nothing here is loaded by a worker: ``benchmarks/gpu_generate.py`` builds these directly on the
GPU, and a test builds them on the ``meta`` device to check their size against the published
parameter counts.

Sources (read, not downloaded at run time):

- LTX-2.3: diffusers ``scripts/convert_ltx2_to_diffusers.py``, ``version == "2.3"`` branches of
  ``get_ltx2_transformer_config``, ``get_ltx2_connectors_config``, ``get_ltx2_video_vae_config``,
  ``get_ltx2_audio_vae_config`` and ``get_ltx2_vocoder_config`` (model id Lightricks/LTX-2.3).
  Lightricks publishes LTX-2 as a 19B-parameter audio-video model.
- Gemma 3 12B (LTX-2's text encoder): ``config.json`` of google/gemma-3-12b-it (text: 48 layers,
  width 3840, 16 query / 8 key-value heads of 256, MLP 15360, vocabulary 262208; vision:
  SigLIP so400m at 896 px, patch 14, 27 layers, width 1152, MLP 4304; 256 tokens per image).
- Wan-Animate-2-14B: ``WanAnimate2Transformer3DModel``'s defaults in diffusers 0.42 are the 14B
  checkpoint's configuration; they equal the Wan 14B image-to-video geometry of diffusers
  ``scripts/convert_wan_to_diffusers.py`` (``Wan-I2V-14B-720p``: 40 layers of width 5120 =
  40 heads x 128, FFN 13824, 36 input channels, text width 4096, image width 1280). The "14B"
  is the text-to-video trunk (``Wan-T2V-14B``); the per-block image cross-attention adds about
  2.1B, so the transformer has 16.4B parameters, as the Wan2.1-I2V-14B checkpoints do.
- Wan VAE: ``vae/config.json`` of the Wan-AI ``*-Diffusers`` repositories (base width 96,
  multipliers 1-2-4-4, two residual blocks, 16 latent channels); the Wan report gives 127M.
- UMT5-XXL encoder: ``config.json`` of google/umt5-xxl (24 layers, width 4096, 64 heads of 64,
  gated-GELU FFN 10240, vocabulary 256384); 5.7B parameters in the encoder half.
- CLIP ViT-H/14 image encoder: ``image_encoder/config.json`` of the Wan-AI I2V ``-Diffusers``
  repositories (32 layers, width 1280, 16 heads, MLP 5120, 224 px, patch 14); OpenCLIP's
  ViT-H/14 vision tower has 632M parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from reelserve.engines.libraries import diffusers, transformers
from reelserve.engines.profiles import EngineFamily

LTX2_TRANSFORMER: dict[str, Any] = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "cross_attention_dim": 4096,
    "vae_scale_factors": (8, 32, 32),
    "pos_embed_max_pos": 20,
    "base_height": 2048,
    "base_width": 2048,
    "gated_attn": True,
    "cross_attn_mod": True,
    "audio_in_channels": 128,
    "audio_out_channels": 128,
    "audio_patch_size": 1,
    "audio_patch_size_t": 1,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048,
    "audio_scale_factor": 4,
    "audio_pos_embed_max_pos": 20,
    "audio_sampling_rate": 16000,
    "audio_hop_length": 160,
    "audio_gated_attn": True,
    "audio_cross_attn_mod": True,
    "num_layers": 48,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "caption_channels": 3840,
    "attention_bias": True,
    "attention_out_bias": True,
    "rope_theta": 10000.0,
    "rope_double_precision": True,
    "causal_offset": 1,
    "timestep_scale_multiplier": 1000,
    "cross_attn_timestep_scale_multiplier": 1000,
    "rope_type": "split",
    "use_prompt_embeddings": False,
    "perturbed_attn": True,
}

LTX2_CONNECTORS: dict[str, Any] = {
    "caption_channels": 3840,
    # Every hidden state of Gemma 3 12B: the embeddings and 48 layers.
    "text_proj_in_factor": 49,
    "video_connector_num_attention_heads": 32,
    "video_connector_attention_head_dim": 128,
    "video_connector_num_layers": 8,
    "video_connector_num_learnable_registers": 128,
    "video_gated_attn": True,
    "audio_connector_num_attention_heads": 32,
    "audio_connector_attention_head_dim": 64,
    "audio_connector_num_layers": 8,
    "audio_connector_num_learnable_registers": 128,
    "audio_gated_attn": True,
    "connector_rope_base_seq_len": 4096,
    "rope_theta": 10000.0,
    "rope_double_precision": True,
    "causal_temporal_positioning": False,
    "rope_type": "split",
    "per_modality_projections": True,
    "video_hidden_dim": 4096,
    "audio_hidden_dim": 2048,
    "proj_bias": True,
}

LTX2_VIDEO_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "block_out_channels": (256, 512, 1024, 1024),
    "down_block_types": ("LTX2VideoDownBlock3D",) * 4,
    "decoder_block_out_channels": (256, 512, 512, 1024),
    "layers_per_block": (4, 6, 4, 2, 2),
    "decoder_layers_per_block": (4, 6, 4, 2, 2),
    "spatio_temporal_scaling": (True, True, True, True),
    "decoder_spatio_temporal_scaling": (True, True, True, True),
    "decoder_inject_noise": (False, False, False, False, False),
    "downsample_type": ("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    "upsample_type": ("spatiotemporal", "spatiotemporal", "temporal", "spatial"),
    "upsample_residual": (False, False, False, False),
    "upsample_factor": (2, 2, 1, 2),
    "timestep_conditioning": False,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "encoder_causal": True,
    "decoder_causal": False,
    "encoder_spatial_padding_mode": "zeros",
    "decoder_spatial_padding_mode": "zeros",
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}

LTX2_AUDIO_VAE: dict[str, Any] = {
    "base_channels": 128,
    "output_channels": 2,
    "ch_mult": (1, 2, 4),
    "num_res_blocks": 2,
    "attn_resolutions": None,
    "in_channels": 2,
    "resolution": 256,
    "latent_channels": 8,
    "norm_type": "pixel",
    "causality_axis": "height",
    "dropout": 0.0,
    "mid_block_add_attention": False,
    "sample_rate": 16000,
    "mel_hop_length": 160,
    "is_causal": True,
    "mel_bins": 64,
    "double_z": True,
}

# LTX-2.3's vocoder with its bandwidth extension to 48 kHz (``LTX2VocoderWithBWE``).
LTX2_VOCODER: dict[str, Any] = {
    "in_channels": 128,
    "hidden_channels": 1536,
    "out_channels": 2,
    "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4],
    "upsample_factors": [5, 2, 2, 2, 2, 2],
    "resnet_kernel_sizes": [3, 7, 11],
    "resnet_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "act_fn": "snakebeta",
    "leaky_relu_negative_slope": 0.1,
    "antialias": True,
    "antialias_ratio": 2,
    "antialias_kernel_size": 12,
    "final_act_fn": None,
    "final_bias": False,
    "bwe_in_channels": 128,
    "bwe_hidden_channels": 512,
    "bwe_out_channels": 2,
    "bwe_upsample_kernel_sizes": [12, 11, 4, 4, 4],
    "bwe_upsample_factors": [6, 5, 2, 2, 2],
    "bwe_resnet_kernel_sizes": [3, 7, 11],
    "bwe_resnet_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "bwe_act_fn": "snakebeta",
    "bwe_leaky_relu_negative_slope": 0.1,
    "bwe_antialias": True,
    "bwe_antialias_ratio": 2,
    "bwe_antialias_kernel_size": 12,
    "bwe_final_act_fn": None,
    "bwe_final_bias": False,
    "filter_length": 512,
    "hop_length": 80,
    "window_length": 512,
    "num_mel_channels": 64,
    "input_sampling_rate": 16000,
    "output_sampling_rate": 48000,
}

GEMMA3_12B_TEXT: dict[str, Any] = {
    "vocab_size": 262208,
    "hidden_size": 3840,
    "intermediate_size": 15360,
    "num_hidden_layers": 48,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "sliding_window": 1024,
}

GEMMA3_12B_VISION: dict[str, Any] = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "image_size": 896,
    "patch_size": 14,
    "vision_use_head": False,
}

GEMMA3_12B_TOKENS_PER_IMAGE = 256

WAN_ANIMATE_2_TRANSFORMER: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "text_len": 512,
    "in_dim": 36,
    "dim": 5120,
    "ffn_dim": 13824,
    "freq_dim": 256,
    "text_dim": 4096,
    "out_dim": 16,
    "num_heads": 40,
    "num_layers": 40,
}

# Wan-T2V-14B (diffusers convert_wan_to_diffusers.py): the trunk the "14B" in the name counts.
WAN_T2V_14B_TRANSFORMER: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
}

WAN_VAE: dict[str, Any] = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "temperal_downsample": [False, True, True],
}

UMT5_XXL: dict[str, Any] = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
}

CLIP_VIT_H_14: dict[str, Any] = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "hidden_act": "gelu",
    "projection_dim": 1024,
}


@dataclass(frozen=True)
class FullSizeComponent:
    """One pipeline component at full size."""

    name: str
    build: Callable[[], torch.nn.Module]
    # The published parameter count in billions, where the model card or paper gives one.
    published_billions: float | None = None


def _ltx2_text_encoder() -> torch.nn.Module:
    tf = transformers()
    config = tf.Gemma3Config(
        text_config=tf.Gemma3TextConfig(**GEMMA3_12B_TEXT),
        vision_config=tf.SiglipVisionConfig(**GEMMA3_12B_VISION),
        mm_tokens_per_image=GEMMA3_12B_TOKENS_PER_IMAGE,
    )
    model: torch.nn.Module = tf.Gemma3ForConditionalGeneration(config)
    return model


def _ltx2() -> tuple[FullSizeComponent, ...]:
    dl, ltx2 = diffusers(), diffusers("pipelines.ltx2")
    return (
        FullSizeComponent(
            "transformer", lambda: dl.LTX2VideoTransformer3DModel(**LTX2_TRANSFORMER), 19.0
        ),
        FullSizeComponent("connectors", lambda: ltx2.LTX2TextConnectors(**LTX2_CONNECTORS)),
        FullSizeComponent("vae", lambda: dl.AutoencoderKLLTX2Video(**LTX2_VIDEO_VAE)),
        FullSizeComponent("audio_vae", lambda: dl.AutoencoderKLLTX2Audio(**LTX2_AUDIO_VAE)),
        FullSizeComponent("vocoder", lambda: ltx2.LTX2VocoderWithBWE(**LTX2_VOCODER)),
        FullSizeComponent("text_encoder", _ltx2_text_encoder, 12.2),
    )


def _wan_animate_2() -> tuple[FullSizeComponent, ...]:
    dl, tf = diffusers(), transformers()
    return (
        FullSizeComponent(
            "transformer",
            lambda: dl.WanAnimate2Transformer3DModel(**WAN_ANIMATE_2_TRANSFORMER),
            16.4,
        ),
        FullSizeComponent("vae", lambda: dl.AutoencoderKLWan(**WAN_VAE), 0.127),
        FullSizeComponent(
            "text_encoder", lambda: tf.UMT5EncoderModel(tf.UMT5Config(**UMT5_XXL)), 5.7
        ),
        FullSizeComponent(
            "image_encoder",
            lambda: tf.CLIPVisionModel(tf.CLIPVisionConfig(**CLIP_VIT_H_14)),
            0.632,
        ),
    )


FULL_SIZE: dict[EngineFamily, Callable[[], tuple[FullSizeComponent, ...]]] = {
    "ltx2": _ltx2,
    "wan_animate": _wan_animate_2,
}


def full_size_components(family: EngineFamily) -> tuple[FullSizeComponent, ...]:
    return FULL_SIZE[family]()


def build_full_size(
    family: EngineFamily, device: torch.device | str, dtype: torch.dtype
) -> dict[str, torch.nn.Module]:
    """Every component of ``family`` with random weights, created on ``device`` in ``dtype``.

    Parameters are created in ``dtype`` directly: LTX-2's 31B parameters would not fit an 80 GB
    card in float32 before a cast. On ``meta`` this allocates nothing.
    """
    with _default_dtype(dtype), torch.device(device):
        return {c.name: c.build().eval() for c in full_size_components(family)}


def parameter_count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
