"""Test fixtures shipped with lfmdesk: tiny random-weight LFM2-VL checkpoints.

They are laid out exactly like Liquid AI's Hugging Face and MLX repositories and load with
the real ``mlx_vlm.load``, so engine and CLI tests run the real stack without a download::

    from lfmdesk.core.testing import build_fixture_family

    family = build_fixture_family(tmp_path)      # {"hf", "v1", "4bit", ..., "bf16"}
    model, processor = mlx_vlm.load(str(family["8bit"]))
"""

from lfmdesk.core.testing._checkpoints import (
    FAMILY_BITS,
    build_fixture_family,
    write_checkpoint,
    write_quantized,
)
from lfmdesk.core.testing._fakehub import FakeHub, RequestRecord
from lfmdesk.core.testing._noise import noise_image
from lfmdesk.core.testing._scripted import ScriptedEngine
from lfmdesk.core.testing._servers import Fault, FaultyServer, ServeProcess
from lfmdesk.core.testing._squares import SQUARE_LABEL, squares_project
from lfmdesk.core.testing._tokenizer import added_tokens
from lfmdesk.core.testing._video import BOX_COLOR, box_at, moving_box_frames

__all__ = [
    "BOX_COLOR",
    "FAMILY_BITS",
    "SQUARE_LABEL",
    "FakeHub",
    "Fault",
    "FaultyServer",
    "RequestRecord",
    "ScriptedEngine",
    "ServeProcess",
    "added_tokens",
    "box_at",
    "build_fixture_family",
    "moving_box_frames",
    "noise_image",
    "squares_project",
    "write_checkpoint",
    "write_quantized",
]
