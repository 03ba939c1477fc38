"""The JSON files of an LFM2-VL checkpoint, shaped like Liquid AI's repositories.

Two styles:

* ``"v1"`` mirrors LFM2-VL-450M's files key for key (remote-code ``auto_map``, top-level
  ``rope_theta``, ``block_*`` fields, ``model_type`` ``"lfm2-vl"``, flat processor configs).
* ``"lfm2.5"`` is what transformers >= 4.57 writes for LFM2.5-VL-450M: ``model_type``
  ``"lfm2_vl"``, ``image_token_id``, ``dtype``, ``rope_parameters`` instead of ``rope_theta``
  and ``intermediate_size`` without ``block_ff_dim``; processor defaults min 32 / max 256
  image tokens with splitting on.
"""

from __future__ import annotations

from typing import Any, Literal

from lfmdesk.core.testing._weights import Dims

__all__ = [
    "FULL",
    "TINY",
    "V1_CHAT_TEMPLATE",
    "Style",
    "generation_config",
    "model_config",
    "preprocessor_config",
    "processor_config",
]

Style = Literal["lfm2.5", "v1"]

TINY = Dims(
    hidden=128,
    layer_types=("conv", "full_attention"),
    heads=2,
    kv_heads=1,
    intermediate=384,
    vision_hidden=128,
    vision_layers=1,
    vision_heads=2,
    vision_intermediate=256,
    projector_hidden=128,
)
FULL = Dims(
    hidden=1024,
    layer_types=("conv", "conv", "full_attention") * 3 + ("conv", "full_attention") * 3 + ("conv",),
    heads=16,
    kv_heads=8,
    intermediate=6656,
    vision_hidden=768,
    vision_layers=12,
    vision_heads=12,
    vision_intermediate=3072,
    projector_hidden=2560,
)

# LFM2-VL-450M's own template: no tools, no tool turns.
V1_CHAT_TEMPLATE = (
    "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}"
    "{% endif %}"
)
# mlx-vlm builds the LFM2 MLP from ``block_dim`` (default 1024), not ``hidden_size``; LFM2.5
# configs written by transformers drop the field, which only works because 1024 is the real
# hidden size. Smaller checkpoints must keep it.
_MLX_VLM_BLOCK_DIM_DEFAULT = 1024
_REMOTE_PROCESSOR = {"AutoProcessor": "processing_lfm2_vl.Lfm2VlProcessor"}
_TILING_V1: dict[str, Any] = {
    "do_image_splitting": True,
    "downsample_factor": 2,
    "encoder_patch_size": 16,
    "max_image_tokens": 256,
    "max_num_patches": 1024,
    "max_pixels_tolerance": 2.0,
    "max_tiles": 10,
    "min_image_tokens": 64,
    "min_tiles": 2,
}
_MIN_IMAGE_TOKENS = {"v1": 64, "lfm2.5": 32}
_USE_THUMBNAIL = {"v1": False, "lfm2.5": True}


def _v1_text_config(d: Dims) -> dict[str, Any]:
    return {
        "_name_or_path": "LiquidAI/LFM2-350M",
        "architectures": ["Lfm2ForCausalLM"],
        "block_auto_adjust_ff_dim": True,
        "block_dim": d.hidden,
        "block_ff_dim": d.intermediate,
        "block_ffn_dim_multiplier": 1.0,
        "block_mlp_init_scale": 1.0,
        "block_multiple_of": d.multiple_of,
        "block_norm_eps": 1e-05,
        "block_out_init_scale": 1.0,
        "block_use_swiglu": True,
        "block_use_xavier_init": True,
        "conv_L_cache": d.conv_kernel,
        "conv_bias": False,
        "conv_dim": d.hidden,
        "conv_dim_out": d.hidden,
        "conv_use_xavier_init": True,
        "eos_token_id": 7,
        "hidden_size": d.hidden,
        "initializer_range": 0.02,
        "intermediate_size": d.intermediate,
        "layer_types": list(d.layer_types),
        "max_position_embeddings": 128000,
        "model_type": "lfm2",
        "norm_eps": 1e-05,
        "num_attention_heads": d.heads,
        "num_heads": d.heads,
        "num_hidden_layers": len(d.layer_types),
        "num_key_value_heads": d.kv_heads,
        "rope_theta": 1000000.0,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "use_pos_enc": True,
        "vocab_size": d.vocab,
    }


def _lfm25_text_config(d: Dims) -> dict[str, Any]:
    config: dict[str, Any] = {
        "block_auto_adjust_ff_dim": True,
        "block_ffn_dim_multiplier": 1.0,
        "block_multiple_of": d.multiple_of,
        "bos_token_id": 1,
        "conv_L_cache": d.conv_kernel,
        "conv_bias": False,
        "dtype": "bfloat16",
        "eos_token_id": 7,
        "hidden_size": d.hidden,
        "initializer_range": 0.02,
        "intermediate_size": d.intermediate,
        "layer_types": list(d.layer_types),
        "max_position_embeddings": 128000,
        "model_type": "lfm2",
        "norm_eps": 1e-05,
        "num_attention_heads": d.heads,
        "num_hidden_layers": len(d.layer_types),
        "num_key_value_heads": d.kv_heads,
        "pad_token_id": 0,
        "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
        "tie_word_embeddings": True,
        "use_cache": True,
        "vocab_size": d.vocab,
    }
    if d.hidden != _MLX_VLM_BLOCK_DIM_DEFAULT:
        config["block_dim"] = d.hidden
    return dict(sorted(config.items()))


def _vision_config(d: Dims, dtype_key: str) -> dict[str, Any]:
    return {
        "attention_dropout": 0.0,
        dtype_key: "bfloat16",
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_size": d.vision_hidden,
        "intermediate_size": d.vision_intermediate,
        "layer_norm_eps": 1e-06,
        "model_type": "siglip2_vision_model",
        "num_attention_heads": d.vision_heads,
        "num_channels": 3,
        "num_hidden_layers": d.vision_layers,
        "num_patches": d.vision_patches,
        "patch_size": d.patch_size,
        "vision_use_head": False,
    }


def _tiling(style: Style) -> dict[str, Any]:
    return {**_TILING_V1, "min_image_tokens": _MIN_IMAGE_TOKENS[style]}


def model_config(style: Style, d: Dims) -> dict[str, Any]:
    """``config.json`` for ``style`` with the sizes in ``d``."""
    v1 = style == "v1"
    config: dict[str, Any] = {"architectures": ["Lfm2VlForConditionalGeneration"]}
    if v1:
        config["auto_map"] = {
            "AutoConfig": "modeling_lfm2_vl.Lfm2VlConfig",
            "AutoModelForImageTextToText": "modeling_lfm2_vl.Lfm2VlForConditionalGeneration",
        }
    config.update(_tiling(style))
    config["image_token_index" if v1 else "image_token_id"] = 396
    config.update(
        {
            "model_type": "lfm2-vl" if v1 else "lfm2_vl",
            "projector_bias": True,
            "projector_hidden_act": "gelu",
            "projector_hidden_size": d.projector_hidden,
            "text_config": _v1_text_config(d) if v1 else _lfm25_text_config(d),
            "tile_size": 512,
            "torch_dtype" if v1 else "dtype": "bfloat16",
            "transformers_version": "4.55.0" if v1 else "5.0.0",
            "use_image_special_tokens": True,
            "use_thumbnail": _USE_THUMBNAIL[style],
            "vision_config": _vision_config(d, "torch_dtype" if v1 else "dtype"),
            "vision_feature_layer": -1,
        }
    )
    if not v1:
        config["projector_use_layernorm"] = True
        config["tie_word_embeddings"] = True
    return dict(sorted(config.items()))


def generation_config(style: Style) -> dict[str, Any]:
    """``generation_config.json``: BOS 1, EOS 7 (``<|im_end|>``), PAD 0."""
    return {
        "_from_model_config": True,
        "bos_token_id": 1,
        "eos_token_id": 7,
        "pad_token_id": 0,
        "transformers_version": "4.55.0" if style == "v1" else "5.0.0",
    }


def processor_config(style: Style) -> dict[str, Any]:
    """``processor_config.json``: the tiling settings the processor reads."""
    config: dict[str, Any] = {"auto_map": _REMOTE_PROCESSOR} if style == "v1" else {}
    config.update(_tiling(style))
    config.update(
        {
            "processor_class": "Lfm2VlProcessor",
            "tile_size": 512,
            "use_image_special_tokens": True,
            "use_thumbnail": _USE_THUMBNAIL[style],
        }
    )
    return config


def preprocessor_config(style: Style) -> dict[str, Any]:
    """``preprocessor_config.json``: the Siglip2 image normalisation settings."""
    config: dict[str, Any] = {"auto_map": _REMOTE_PROCESSOR} if style == "v1" else {}
    config.update(
        {
            "do_convert_rgb": None,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": False,
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "Siglip2ImageProcessor",
            "image_std": [0.5, 0.5, 0.5],
            "input_data_format": "channels_last",
            "max_num_patches": 1024,
            "patch_size": 16,
            "processor_class": "Lfm2VlProcessor",
            "resample": 2,
            "rescale_factor": 0.00392156862745098,
            "return_tensors": "pt",
        }
    )
    return config
