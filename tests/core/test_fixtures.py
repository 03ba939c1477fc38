"""The shipped test checkpoints: real layout, real token ids, and they run in real mlx-vlm."""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lfmdesk.core.testing import (
    FAMILY_BITS,
    added_tokens,
    build_fixture_family,
    write_checkpoint,
    write_quantized,
)

pytestmark = pytest.mark.slow

_REPO = Path(__file__).resolve().parents[2]
_REFERENCE = next(
    (
        p
        for p in (
            _REPO / "shared" / "reference" / "lfm2-vl-450m",
            _REPO.parent / "shared" / "reference" / "lfm2-vl-450m",
        )
        if p.is_dir()
    ),
    None,
)
needs_reference = pytest.mark.skipif(_REFERENCE is None, reason="shared/reference not present")

_HF_FILES = {
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "processor_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
}
_MLX_FILES = _HF_FILES | {"model.safetensors.index.json"}
_ALL = ("hf", "v1", "4bit", "5bit", "6bit", "8bit", "bf16")
_SYSTEM_AND_IMAGE = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
]
_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@dataclass
class Family:
    root: Path
    paths: dict[str, Path]
    seconds: float


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Family:
    root = tmp_path_factory.mktemp("family")
    start = time.perf_counter()
    paths = build_fixture_family(root)
    seconds = time.perf_counter() - start
    print(f"\nfixture family (7 checkpoints) built in {seconds:.1f} s")
    return Family(root, paths, seconds)


@pytest.fixture(scope="module")
def loaded(family: Family) -> Any:
    """``loaded(key)`` -> (model, processor), each variant loaded once with mlx_vlm.load."""
    import mlx_vlm

    cache: dict[str, tuple[Any, Any]] = {}

    def get(key: str) -> tuple[Any, Any]:
        if key not in cache:
            cache[key] = mlx_vlm.load(str(family.paths[key]))
        return cache[key]

    return get


@pytest.fixture(scope="module")
def tokenizer(family: Family) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(family.paths["hf"])


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header: dict[str, Any] = json.loads(fh.read(size))
    header.pop("__metadata__", None)
    return header


def _image(width: int = 512, height: int = 512) -> Any:
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


# --- building -------------------------------------------------------------------------------


def test_family_builds_within_a_minute(family: Family) -> None:
    assert set(family.paths) == set(_ALL)
    assert family.seconds < 60


def test_checkpoints_have_the_repository_files(family: Family) -> None:
    for key, path in family.paths.items():
        files = {p.name for p in path.iterdir()}
        assert files == (_HF_FILES if key in ("hf", "v1") else _MLX_FILES), key


def test_complete_checkpoints_are_reused_and_half_built_ones_rebuilt(family: Family) -> None:
    v1 = family.paths["v1"]
    original = (v1 / "model.safetensors").read_bytes()
    others = {k: (p / "config.json").stat().st_mtime_ns for k, p in family.paths.items()}
    (v1 / "model.safetensors").unlink()
    (family.root / f".{v1.name}.complete").unlink()  # as if the build was interrupted

    assert build_fixture_family(family.root) == family.paths

    assert (v1 / "model.safetensors").read_bytes() == original
    for key, mtime in others.items():
        if key != "v1":
            assert (family.paths[key] / "config.json").stat().st_mtime_ns == mtime, key


def test_weights_are_reproducible_from_the_seed(family: Family, tmp_path: Path) -> None:
    same = write_checkpoint(tmp_path / "same", seed=0)
    other = write_checkpoint(tmp_path / "other", seed=5)
    hf_weights = (family.paths["hf"] / "model.safetensors").read_bytes()
    assert (same / "model.safetensors").read_bytes() == hf_weights
    assert (other / "model.safetensors").read_bytes() != hf_weights


def test_write_quantized_rejects_unsupported_bits(family: Family, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="4, 5, 6, 8"):
        write_quantized(family.paths["hf"], tmp_path / "q3", 3)
    assert not (tmp_path / "q3").exists()


# --- weights --------------------------------------------------------------------------------


def test_hf_weights_use_hugging_face_names_and_shapes(family: Family) -> None:
    header = _safetensors_header(family.paths["hf"] / "model.safetensors")
    prefixes = ("model.language_model.", "model.vision_tower.vision_model.")
    prefixes += ("model.multi_modal_projector.",)
    assert all(name.startswith(prefixes) for name in header)
    assert {entry["dtype"] for entry in header.values()} == {"BF16"}
    shapes = {name: tuple(entry["shape"]) for name, entry in header.items()}
    assert shapes["model.language_model.embed_tokens.weight"] == (65536, 128)
    assert shapes["model.language_model.layers.0.conv.conv.weight"] == (128, 1, 3)
    assert shapes["model.language_model.layers.1.self_attn.q_proj.weight"] == (128, 128)
    emb = "model.vision_tower.vision_model.embeddings."
    assert shapes[f"{emb}patch_embedding.weight"] == (128, 768)
    assert shapes[f"{emb}position_embedding.weight"] == (256, 128)
    assert shapes["model.multi_modal_projector.linear_1.weight"] == (128, 512)
    assert not any("lm_head" in name for name in header)  # embeddings are tied


def test_full_dims_have_the_450m_parameter_count() -> None:
    from lfmdesk.core.testing._configs import FULL
    from lfmdesk.core.testing._weights import tensor_specs

    count = sum(int(np.prod(spec.shape)) for spec in tensor_specs(FULL))
    assert 445e6 < count < 455e6


# --- tokenizer ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["hf", "v1", "4bit"])
def test_special_tokens_sit_at_the_real_ids(family: Family, key: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(family.paths[key], trust_remote_code=False)
    expected = {
        "<|pad|>": 0,
        "<|startoftext|>": 1,
        "<|im_start|>": 6,
        "<|im_end|>": 7,
        "<|tool_list_start|>": 8,
        "<|tool_response_end|>": 13,
        "<image>": 396,
        "<|img_row_1_col_1|>": 397,
        "<|img_row_10_col_10|>": 496,
        "<|img_thumbnail|>": 497,
        "<|image_start|>": 498,
        "<|image_end|>": 499,
    }
    assert {t: tok.convert_tokens_to_ids(t) for t in expected} == expected
    assert all(tok.convert_tokens_to_ids(c) == i for i, (c, _) in added_tokens().items())
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 7, 0)
    assert tok.encode("<|im_start|>user", add_special_tokens=False)[0] == 6


@needs_reference
def test_added_tokens_match_the_reference(family: Family) -> None:
    assert _REFERENCE is not None
    reference = _json(_REFERENCE / "tokenizer_config.json")["added_tokens_decoder"]
    ours = _json(family.paths["hf"] / "tokenizer_config.json")["added_tokens_decoder"]
    assert ours == reference


def test_every_id_exists_once_and_decodes(tokenizer: Any) -> None:
    vocab = tokenizer.get_vocab()
    assert sorted(vocab.values()) == list(range(65536))  # a dict: the strings are unique
    assert all(tokenizer.decode([i]) for i in range(65536))


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_round_trips(tokenizer: Any, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


def test_streaming_detokenizer_reproduces_text(loaded: Any) -> None:
    _, processor = loaded("hf")
    text = "Grüße, 世界! 😀 <|im_end|> tabs\tand\nlines"
    detok = processor.detokenizer
    detok.reset()
    for token in processor.tokenizer.encode(text, add_special_tokens=False):
        detok.add_token(token)
    detok.finalize()
    assert detok.text == text


# --- chat template --------------------------------------------------------------------------


def test_chat_template_renders_system_and_image_parts(tokenizer: Any) -> None:
    rendered = tokenizer.apply_chat_template(
        _SYSTEM_AND_IMAGE, tokenize=False, add_generation_prompt=True
    )
    assert rendered == (
        "<|startoftext|><|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\n<image>What is this?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_template_appends_tools_to_the_system_prompt(tokenizer: Any) -> None:
    rendered = tokenizer.apply_chat_template(
        [_SYSTEM_AND_IMAGE[0], {"role": "user", "content": "Weather?"}],
        tools=[_TOOL, _TOOL],
        tokenize=False,
    )
    tool = json.dumps(_TOOL, ensure_ascii=False)
    assert rendered == (
        "<|startoftext|><|im_start|>system\nBe brief.\n"
        f"List of tools: <|tool_list_start|>[{tool}, {tool}]<|tool_list_end|><|im_end|>\n"
        "<|im_start|>user\nWeather?<|im_end|>\n"
    )


def test_chat_template_creates_a_system_turn_for_tools_and_wraps_tool_turns(
    tokenizer: Any,
) -> None:
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": '<|tool_call_start|>[get_weather(city="Oslo")]'},
        {"role": "tool", "content": '{"temp": 3}'},
    ]
    rendered = tokenizer.apply_chat_template(
        messages, tools=[_TOOL], tokenize=False, add_generation_prompt=True
    )
    assert rendered.startswith("<|startoftext|><|im_start|>system\nList of tools: ")
    assert rendered.endswith(
        '<|im_start|>tool\n<|tool_response_start|>{"temp": 3}<|tool_response_end|><|im_end|>\n'
        "<|im_start|>assistant\n"
    )


@needs_reference
def test_v1_checkpoint_ships_the_reference_template(family: Family) -> None:
    assert _REFERENCE is not None
    ours = (family.paths["v1"] / "chat_template.jinja").read_text(encoding="utf-8")
    assert ours == (_REFERENCE / "chat_template.jinja").read_text(encoding="utf-8")


# --- configs --------------------------------------------------------------------------------

# Values that differ from the reference only because the tiny checkpoint is smaller.
_SIZE_KEYS = {
    "block_dim",
    "block_ff_dim",
    "conv_dim",
    "conv_dim_out",
    "hidden_size",
    "intermediate_size",
    "layer_types",
    "num_attention_heads",
    "num_heads",
    "num_hidden_layers",
    "num_key_value_heads",
    "projector_hidden_size",
}


def _differences(ours: Any, ref: Any, path: str = "") -> list[str]:
    if isinstance(ref, dict) and isinstance(ours, dict):
        if set(ours) != set(ref):
            return [f"{path}: keys {sorted(set(ours) ^ set(ref))}"]
        return [d for k in ref for d in _differences(ours[k], ref[k], f"{path}.{k}")]
    if path.rsplit(".", 1)[-1] in _SIZE_KEYS or ours == ref:
        return []
    return [f"{path}: {ours!r} != {ref!r}"]


@needs_reference
@pytest.mark.parametrize(
    "name",
    [
        "config.json",
        "generation_config.json",
        "processor_config.json",
        "preprocessor_config.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ],
)
def test_v1_files_mirror_the_reference(family: Family, name: str) -> None:
    assert _REFERENCE is not None
    assert _differences(_json(family.paths["v1"] / name), _json(_REFERENCE / name)) == []


def test_lfm25_config_uses_rope_parameters_and_its_image_defaults(
    family: Family, loaded: Any
) -> None:
    text = _json(family.paths["hf"] / "config.json")["text_config"]
    assert text["rope_parameters"] == {"rope_theta": 1000000.0, "rope_type": "default"}
    assert "rope_theta" not in text and "block_ff_dim" not in text
    assert text["intermediate_size"] == 384
    processor = _json(family.paths["hf"] / "processor_config.json")
    assert (processor["min_image_tokens"], processor["max_image_tokens"]) == (32, 256)
    assert processor["do_image_splitting"] is True
    model, _ = loaded("hf")
    assert model.config.text_config.rope_theta == 1000000.0


@pytest.mark.parametrize("label", list(FAMILY_BITS))
def test_mlx_copies_are_patched_like_liquids_repositories(family: Family, label: str) -> None:
    path = family.paths[label]
    config = _json(path / "config.json")
    bits = FAMILY_BITS[label]
    expected = None if bits is None else {"group_size": 64, "bits": bits}
    assert config.get("quantization") == expected
    image_processor = _json(path / "processor_config.json")["image_processor"]
    assert image_processor["do_image_splitting"] is False
    assert image_processor["min_image_tokens"] == 32
    header = _safetensors_header(path / "model.safetensors")
    assert "language_model.model.layers.0.conv.conv.weight" in header  # MLX names now


# --- running in mlx-vlm ---------------------------------------------------------------------


def _quantized_bits(module: Any) -> set[int]:
    import mlx.nn as nn

    kinds = (nn.QuantizedLinear, nn.QuantizedEmbedding)
    return {m.bits for _, m in module.named_modules() if isinstance(m, kinds)}


@pytest.mark.parametrize("key", _ALL)
def test_mlx_vlm_loads_each_variant_with_the_bits_asked_for(loaded: Any, key: str) -> None:
    model, _ = loaded(key)
    bits = FAMILY_BITS.get(key)
    assert _quantized_bits(model.language_model) == (set() if bits is None else {bits})
    assert _quantized_bits(model.vision_tower) == set()
    assert _quantized_bits(model.multi_modal_projector) == set()


@pytest.mark.parametrize("key", _ALL)
def test_mlx_vlm_generates_from_an_image(loaded: Any, key: str) -> None:
    import mlx_vlm
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = loaded(key)
    prompt = apply_chat_template(processor, model.config, "Describe the image.", num_images=1)
    result = mlx_vlm.generate(
        model, processor, prompt, image=[_image()], max_tokens=5, temperature=0.0, verbose=False
    )
    assert 1 <= len(result.token_ids) <= 5
    assert all(0 <= t < 65536 for t in result.token_ids)
    assert result.prompt_tokens > 256


@pytest.mark.parametrize("key", ["hf", "v1", "8bit"])
def test_a_512_square_image_becomes_256_image_tokens(loaded: Any, key: str) -> None:
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = loaded(key)
    prompt = apply_chat_template(processor, model.config, "Describe.", num_images=1)
    inputs = processor(text=[prompt], images=[_image()])
    ids = np.asarray(inputs["input_ids"])
    assert int((ids == 396).sum()) == 256
    assert int((ids == 498).sum()) == int((ids == 499).sum()) == 1
