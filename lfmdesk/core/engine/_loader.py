"""Loading a verified LFM2-VL folder with mlx-vlm's built-in ``lfm2_vl`` classes, and nothing else.

mlx-vlm 0.7 imports whatever ``config.json`` names in ``model_file`` (a ``.py``, a ``.pyc``, a
native ``.so``, an absolute or ``../`` path), and when its LFM2-VL processor loader fails it
retries through transformers with ``trust_remote_code=True``. So mlx-vlm never sees the model
folder itself: it loads a staging folder lfmdesk builds for the load, which holds

* the JSON files of :data:`~lfmdesk.core.models._verify.SUPPORT_FILES`, rewritten without
  ``model_file``, ``auto_map`` or ``trust_remote_code`` at any depth, with ``model_type`` and
  ``architectures`` pinned to LFM2-VL;
* copies of ``tokenizer.json`` and ``chat_template.jinja``;
* links to the verified weight files.

There is no ``.py``, ``.so`` or pickle in it for mlx-vlm or transformers to import, whatever
they try, and the loaded model must be mlx-vlm's own ``lfm2_vl`` class. A tokenizer that only
its own code can build is refused before anything loads. The staging folder is deleted once
the weights are in memory.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import ModelInvalidError
from lfmdesk.core._files import read_regular
from lfmdesk.core.engine.prompt._template import install_template_limits
from lfmdesk.core.models._verify import (
    CODE_KEYS,
    MAX_SUPPORT_BYTES,
    SUPPORT_FILES,
    ModelFolder,
)

__all__ = [
    "display_name",
    "load_lfm2_vl",
    "make_float32",
    "quantization_bits",
    "say_ignored_once",
]

log = logging.getLogger("lfmdesk")

_DROPPED_KEYS = frozenset({*CODE_KEYS, "trust_remote_code"})
_PINNED = {"model_type": "lfm2_vl", "architectures": ["Lfm2VlForConditionalGeneration"]}
_said: set[str] = set()
_said_lock = threading.Lock()


def say_ignored_once(folder: ModelFolder) -> None:
    """Log what the folder holds that lfmdesk ignores, once per folder and process."""
    notice = folder.notice
    if notice is None:
        return
    with _said_lock:
        if str(folder.path) in _said:
            return
        _said.add(str(folder.path))
    log.warning("%s", notice)


def _without_code_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_code_keys(v) for k, v in value.items() if k not in _DROPPED_KEYS}
    if isinstance(value, list):
        return [_without_code_keys(v) for v in value]
    return value


def _refuse(folder: ModelFolder, problem: str) -> ModelInvalidError:
    return ModelInvalidError(f"model folder {folder.path} is not usable: {problem}")


def _check_tokenizer_class(folder: ModelFolder, config: dict[str, Any]) -> None:
    """Refuse a tokenizer that only the folder's own code could build."""
    name = config.get("tokenizer_class")
    if name is None:
        return
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    known = isinstance(name, str) and any(
        tokenizer_class_from_name(candidate) is not None
        for candidate in (name, name.removesuffix("Fast"))
    )
    if not known:
        raise _refuse(
            folder,
            f"its tokenizer ({str(name)[:80]!r}) needs the folder's own code, "
            "which lfmdesk never runs",
        )


def _stage(folder: ModelFolder, dest: Path) -> None:
    """Write the staging folder mlx-vlm loads (see the module docstring)."""
    for name in folder.support:
        raw = read_regular(folder.path / name, limit=MAX_SUPPORT_BYTES)
        if SUPPORT_FILES[name]:
            data = _without_code_keys(json.loads(raw))
            if name == "config.json":
                data.update(_PINNED)
            if name == "tokenizer_config.json":
                _check_tokenizer_class(folder, data)
            raw = json.dumps(data).encode("utf-8")
        (dest / name).write_bytes(raw)
    for name in folder.weights:
        link = dest / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to((folder.path / name).resolve())


def _check_loaded(folder: ModelFolder, model: Any, processor: Any) -> None:
    from mlx_vlm.models.lfm2_vl import Model as Lfm2VlModel

    if type(model) is not Lfm2VlModel:
        raise _refuse(folder, f"it loaded as {type(model).__module__}, not mlx-vlm's LFM2-VL")
    tokenizer = getattr(processor, "tokenizer", processor)
    if not type(tokenizer).__module__.startswith("transformers."):
        raise _refuse(folder, "its tokenizer is not one transformers builds itself")


def load_lfm2_vl(folder: ModelFolder, adapter: Path | None = None) -> tuple[Any, Any]:
    """Load ``folder`` with mlx-vlm's ``lfm2_vl`` model and processor; run nothing from it.

    ``adapter`` is a LoRA adapter folder lfmdesk trained (``core.train``), applied by mlx-vlm
    on top of the weights; its config is JSON and its weights safetensors.

    Returns:
        mlx-vlm's model and processor, as ``mlx_vlm.load`` returns them.

    Raises:
        ModelInvalidError: the tokenizer needs the folder's own code, or the folder did not
            load as LFM2-VL.
        Exception: whatever mlx-vlm raises for a folder it cannot load (the caller words it).
    """
    install_template_limits()
    staging = Path(tempfile.mkdtemp(prefix="lfmdesk-load-"))
    try:
        _stage(folder, staging)
        from mlx_vlm import load as vlm_load

        model, processor = vlm_load(
            str(staging), adapter_path=str(adapter) if adapter is not None else None
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _check_loaded(folder, model, processor)
    model.model_path = folder.path
    return model, processor


def display_name(path: Path) -> str:
    """A model folder's name to show: the repo id for a Hugging Face cache snapshot."""
    # HF cache: .../models--Org--Name/snapshots/<sha> -> Org/Name
    for parent in (path, *path.parents):
        if parent.name.startswith("models--"):
            return parent.name[len("models--") :].replace("--", "/")
    return path.name


def make_float32(model: Any, quantized: bool) -> None:
    """Compute ``model`` in float32 (dequantized first when ``quantized``)."""
    # CPU MLX: bf16 and quantized matmuls bypass BLAS; float32 goes through OpenBLAS (~10x).
    import mlx.core as mx
    from mlx_vlm.quant_utils import dequantize_model

    if quantized:
        dequantize_model(model)
    model.set_dtype(mx.float32)
    mx.eval(model.parameters())


def quantization_bits(path: Path) -> int | None:
    """The bits of a quantized checkpoint (from its config.json), None for a float one."""
    # mlx-vlm's ModelConfig drops the "quantization" entry; the config file keeps it.
    try:
        quant = json.loads(read_regular(path / "config.json", limit=MAX_SUPPORT_BYTES))
        quant = quant.get("quantization") if isinstance(quant, dict) else None
    except (OSError, ValueError, RecursionError):
        return None
    bits = quant.get("bits") if isinstance(quant, dict) else None
    return bits if isinstance(bits, int) else None
