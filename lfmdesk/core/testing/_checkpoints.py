"""Random-weight LFM2-VL checkpoints in the real Hugging Face layout, and their MLX copies.

``write_checkpoint`` writes what a Hugging Face repository of LFM2-VL holds (configs,
tokenizer, chat template, ``model.safetensors`` under HF key names); ``write_quantized`` runs
mlx-vlm's own converter on it and patches the result to look like Liquid AI's
``LFM2.5-VL-450M-MLX-*`` repositories; ``build_fixture_family`` builds (or reuses) the set
the test-suite loads.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal

from lfmdesk.core.testing import _configs
from lfmdesk.core.testing._configs import Style
from lfmdesk.core.testing._tokenizer import write_tokenizer_files
from lfmdesk.core.testing._weights import tensor_specs, write_safetensors

__all__ = [
    "FAMILY_BITS",
    "build_fixture_family",
    "write_checkpoint",
    "write_quantized",
]

Size = Literal["tiny", "full"]

FAMILY_BITS: dict[str, int | None] = {"4bit": 4, "5bit": 5, "6bit": 6, "8bit": 8, "bf16": None}
_QUANT_BITS = frozenset({4, 5, 6, 8})
_GROUP_SIZE = 64
# Bump when the files written here change, so families cached under an old root get rebuilt.
_FORMAT_VERSION = "1"
_DIMS = {"tiny": _configs.TINY, "full": _configs.FULL}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """A scratch folder beside ``dest`` that replaces ``dest`` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp's 0o700 would make the checkpoint private
        if dest.exists():
            shutil.rmtree(dest)
        try:
            os.replace(tmp, dest)
        except OSError:
            # Another process finished the same deterministic build first: keep its copy.
            if not dest.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_checkpoint(
    dest: Path,
    *,
    style: Style = "lfm2.5",
    dims: Size = "tiny",
    seed: int = 0,
) -> Path:
    """Write a random-weight LFM2-VL checkpoint in the Hugging Face layout.

    Args:
        dest: Folder to create; an existing one is replaced once the new one is complete.
        style: ``"lfm2.5"`` (LFM2.5-VL files as transformers writes them, tools in the chat
            template) or ``"v1"`` (LFM2-VL-450M's files key for key, its own template).
        dims: ``"tiny"`` (hidden 128, one conv + one attention layer, one vision layer;
            writes in well under a second) or ``"full"`` (the real 450M shape, ~900 MB).
        seed: Weights are drawn from ``seed`` and the tensor's key: matrices normal with std
            1/sqrt(fan_in), embeddings std 0.02, norms 1, biases 0 (finite, varied logits).

    Returns:
        ``dest``.
    """
    shape = _DIMS[dims]
    with _staging(dest) as tmp:
        _write_json(tmp / "config.json", _configs.model_config(style, shape))
        _write_json(tmp / "generation_config.json", _configs.generation_config(style))
        _write_json(tmp / "processor_config.json", _configs.processor_config(style))
        _write_json(tmp / "preprocessor_config.json", _configs.preprocessor_config(style))
        write_tokenizer_files(tmp, with_auto_map=style == "v1")
        if style == "v1":
            (tmp / "chat_template.jinja").write_text(_configs.V1_CHAT_TEMPLATE, encoding="utf-8")
        write_safetensors(tmp / "model.safetensors", tensor_specs(shape), seed)
    return dest


def _patch_json(path: Path, patch: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    patch(data)
    _write_json(path, data)


def _disable_splitting(config: dict[str, Any]) -> None:
    # transformers 5 nests the image-processor settings; older writers keep them flat.
    target = config.get("image_processor", config)
    target["do_image_splitting"] = False


def _run_convert(src: Path, out: Path, bits: int | None) -> None:
    from mlx_vlm.convert import convert

    options: dict[str, Any] = {"dtype": "bfloat16"}
    if bits is not None:
        options.update(quantize=True, q_bits=bits, q_group_size=_GROUP_SIZE)
    with contextlib.redirect_stdout(io.StringIO()):
        convert(str(src), mlx_path=str(out), **options)


def write_quantized(src: Path, dest: Path, bits: int | None) -> Path:
    """Convert a Hugging Face layout checkpoint with mlx-vlm, like Liquid's MLX repositories.

    mlx-vlm quantizes the language model only (vision tower and projector stay bf16). The
    result is patched the way ``LiquidAI/LFM2.5-VL-450M-MLX-*`` ship: ``config.json`` gets
    ``"quantization": {"group_size": 64, "bits": N}`` and the processor config says
    ``do_image_splitting: false``.

    Args:
        src: A folder from :func:`write_checkpoint` (or any LFM2-VL HF checkpoint).
        dest: Folder to create; an existing one is replaced once the new one is complete.
        bits: 4, 5, 6 or 8; ``None`` for an unquantized bf16 copy.

    Returns:
        ``dest``.

    Raises:
        ValueError: ``bits`` is not one of 4, 5, 6, 8 or None.
    """
    if bits is not None and bits not in _QUANT_BITS:
        raise ValueError(f"bits must be one of 4, 5, 6, 8 or None, not {bits!r}")
    quantization = {"group_size": _GROUP_SIZE, "bits": bits}

    def patch_config(config: dict[str, Any]) -> None:
        for key in ("quantization", "quantization_config"):
            config.pop(key, None)
            if bits is not None:
                config[key] = dict(quantization)

    with _staging(dest) as tmp:
        _run_convert(src, tmp, bits)
        _patch_json(tmp / "config.json", patch_config)
        _patch_json(tmp / "processor_config.json", _disable_splitting)
        (tmp / "README.md").unlink(missing_ok=True)  # mlx-vlm's generated model card
    return dest


def _reuse_or_build(root: Path, name: str, build: Callable[[Path], Path]) -> Path:
    """``root/name``, rebuilt unless its marker (written last) says it is complete."""
    dest = root / name
    marker = root / f".{name}.complete"
    if dest.is_dir() and marker.is_file() and marker.read_text() == _FORMAT_VERSION:
        return dest
    marker.unlink(missing_ok=True)
    build(dest)
    marker.write_text(_FORMAT_VERSION)
    return dest


def build_fixture_family(root: Path) -> dict[str, Path]:
    """Build, or reuse from an earlier run, the tiny checkpoints the tests load.

    Args:
        root: Folder that holds the family (created if missing).

    Returns:
        ``{"hf": LFM2.5 tiny HF checkpoint, "v1": LFM2-VL v1 tiny HF checkpoint,
        "4bit"/"5bit"/"6bit"/"8bit"/"bf16": mlx-vlm conversions of "hf"}``.
    """
    root.mkdir(parents=True, exist_ok=True)
    hf = _reuse_or_build(root, "lfm2.5-vl-tiny", write_checkpoint)
    v1 = _reuse_or_build(root, "lfm2-vl-tiny-v1", partial(write_checkpoint, style="v1", seed=1))
    family = {"hf": hf, "v1": v1}
    for label, bits in FAMILY_BITS.items():
        convert = partial(write_quantized, hf, bits=bits)
        family[label] = _reuse_or_build(root, f"lfm2.5-vl-tiny-mlx-{label}", convert)
    return family
