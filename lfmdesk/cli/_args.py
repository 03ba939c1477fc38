"""The command line's grammar: subcommands and the setting flags, built from tables."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from lfmdesk import __version__
from lfmdesk.cli._engine import add_backend_flags
from lfmdesk.core import AppSettings, SamplingSettings, VisionSettings

__all__ = ["build_parser", "settings_from_args"]

# (field, type, help) — each becomes --field-name and overrides the saved settings.
SAMPLING_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("temperature", float, "sampling temperature; 0 is greedy (card: 0.1)"),
    ("min_p", float, "min-p sampling threshold (card: 0.15)"),
    ("top_p", float, "nucleus sampling; 1 disables it"),
    ("top_k", int, "sample among the K most likely tokens; 0 disables it"),
    ("repetition_penalty", float, "repetition penalty; 1 disables it (card: 1.05)"),
    ("max_tokens", int, "most tokens in the answer (default 512)"),
    ("seed", int, "random seed, for repeatable sampling"),
)
VISION_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("min_image_tokens", int, "fewest tokens per image/thumbnail (card: 32)"),
    ("max_image_tokens", int, "most tokens per image/thumbnail (card: 256)"),
    ("min_tiles", int, "fewest 512 px tiles when splitting (default 2)"),
    ("max_tiles", int, "most 512 px tiles when splitting (default 10)"),
)
VISION_SWITCHES: tuple[tuple[str, str], ...] = (
    ("do_image_splitting", "split large images into 512 px tiles (default on)"),
    ("use_thumbnail", "add a whole-image thumbnail after the tiles (default on)"),
)
_SWITCH_FLAGS = {"do_image_splitting": "--image-splitting", "use_thumbnail": "--thumbnail"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        "-m",
        help="variant key (4bit..bf16, default 8bit), repo id or folder; with --backend, "
        "the server's model id",
    )
    g.add_argument(
        "--compute",
        choices=("auto", "native", "float32"),
        default="auto",
        help="auto: float32 on CPU (fast with OpenBLAS), as shipped on Apple GPUs",
    )
    g.add_argument(
        "--adapter", metavar="NAME", help="apply a trained adapter (lfmdesk adapters list)"
    )
    add_backend_flags(p)
    s = p.add_argument_group("sampling")
    for name, typ, text in SAMPLING_FLAGS:
        s.add_argument(_flag(name), type=typ, default=None, help=text)
    _add_decoding_flags(s)
    _add_vision_flags_only(p)


def _add_decoding_flags(group: Any) -> None:
    """``--constrained`` / ``--free``: the Detect grammar on or off (``SamplingSettings``)."""
    group.add_argument(
        "--constrained",
        dest="constrained",
        action="store_const",
        const=True,
        default=None,
        help="decode Detect answers under the box grammar: always valid JSON (default)",
    )
    group.add_argument(
        "--free",
        dest="constrained",
        action="store_const",
        const=False,
        help="let the model write Detect answers freely (the tolerant parser reads them)",
    )


def _add_vision_flags_only(p: argparse.ArgumentParser) -> None:
    v = p.add_argument_group("vision")
    for name, typ, text in VISION_FLAGS:
        v.add_argument(_flag(name), type=typ, default=None, help=text)
    for name, text in VISION_SWITCHES:
        v.add_argument(
            _SWITCH_FLAGS[name], dest=name, action=argparse.BooleanOptionalAction, help=text
        )


def settings_from_args(args: argparse.Namespace, saved: AppSettings) -> AppSettings:
    """Saved settings with every flag the user gave applied on top (validated)."""

    def overrides(cls: type[Any]) -> dict[str, Any]:
        names = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in vars(args).items() if k in names and v is not None}

    sampling = dataclasses.replace(saved.sampling, **overrides(SamplingSettings))
    vision = dataclasses.replace(saved.vision, **overrides(VisionSettings))
    model = getattr(args, "model", None) or saved.model
    return dataclasses.replace(saved, model=model, sampling=sampling, vision=vision)


def build_parser() -> argparse.ArgumentParser:
    """The full ``lfmdesk`` parser."""
    parser = argparse.ArgumentParser(
        prog="lfmdesk",
        description="Chat with images, detect objects and call tools with LFM2.5-VL on MLX. "
        "Run with no arguments to open the window.",
    )
    parser.add_argument("--version", action="version", version=f"lfmdesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", help="ask about images (or text only); streams the answer")
    ask.add_argument("images", nargs="*", metavar="IMAGE", help="image files (zero or more)")
    ask.add_argument("-p", "--prompt", required=True, help="the question")
    ask.add_argument("--system", help="a system prompt")
    ask.add_argument("--json", action="store_true", help="print one JSON object at the end")
    ask.add_argument("--stats", action="store_true", help="print speed and token stats to stderr")
    ask.add_argument("--show-prompt", action="store_true", help="print the rendered prompt first")
    _add_model_flags(ask)

    det = sub.add_parser("detect", help="find objects; prints boxes as JSON")
    det.add_argument("image", metavar="IMAGE")
    det.add_argument("--labels", "-l", required=True, help='what to find, e.g. "cat,dog"')
    det.add_argument("--draw", metavar="OUT", help="also save a copy with the boxes drawn")
    det.add_argument("--json", action="store_true", help="(default) JSON output; kept for symmetry")
    _add_model_flags(det)

    chat = sub.add_parser("chat", help="interactive chat; /image PATH attaches an image")
    chat.add_argument("images", nargs="*", metavar="IMAGE", help="images for the first turn")
    chat.add_argument("--system", help="a system prompt")
    _add_model_flags(chat)

    tools = sub.add_parser("tools", help="function calling (text only)")
    tools.add_argument("--tools", "-t", required=True, metavar="FILE", help="JSON tool list")
    tools.add_argument("-p", "--prompt", required=True, help="the request")
    tools.add_argument("--system", help="a system prompt")
    tools.add_argument("--json", action="store_true", help="print the calls as JSON")
    _add_model_flags(tools)

    tiles = sub.add_parser("tiles", help="show how an image is tiled and how many tokens it costs")
    tiles.add_argument("image", metavar="IMAGE")
    tiles.add_argument("--json", action="store_true", help="print the plan as JSON")
    _add_vision_flags_only(tiles)

    models = sub.add_parser("models", help="list, download or remove model variants")
    msub = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    mlist = msub.add_parser("list", help="known variants and what is downloaded")
    mlist.add_argument("--json", action="store_true")
    mdl = msub.add_parser("download", help="download a variant into the Hugging Face cache")
    mdl.add_argument("model", metavar="MODEL", help="variant key or repo id")
    mrm = msub.add_parser("remove", help="delete a downloaded variant")
    mrm.add_argument("model", metavar="MODEL", help="variant key or repo id")

    from lfmdesk.cli._annotate import add_annotate_parser
    from lfmdesk.cli._dataset import add_dataset_parsers
    from lfmdesk.cli._eval import add_eval_parser
    from lfmdesk.cli._live import add_live_parser
    from lfmdesk.cli._serve import add_serve_parser
    from lfmdesk.cli._train import add_train_parsers

    add_annotate_parser(sub, _add_model_flags)
    add_dataset_parsers(sub)
    add_live_parser(sub, _add_model_flags)
    add_eval_parser(sub, _add_model_flags)
    add_serve_parser(sub)
    add_train_parsers(sub, _add_vision_flags_only)
    return parser
