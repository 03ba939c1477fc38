"""The subcommands. Each takes parsed args and the effective settings, returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lfmdesk.cli._engine import open_engine
from lfmdesk.cli._output import print_stats, stream_answer, terminal_safe
from lfmdesk.core import (
    AppSettings,
    ChatRequest,
    InputError,
    LoadedImage,
    Message,
    detection_request,
    grounding_prompt,
    load_image,
    load_tool_specs,
    parse_detections,
    parse_tool_calls,
    plan_tiles,
    split_labels,
)
from lfmdesk.core.images._draw import draw_detections, save_drawing

__all__ = ["COMMANDS"]

Command = Callable[[argparse.Namespace, AppSettings], int]


def _dump(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def cmd_ask(args: argparse.Namespace, settings: AppSettings) -> int:
    images = [load_image(p) for p in args.images]  # bad images fail before the model loads
    engine = open_engine(args, settings)
    request = ChatRequest.single(
        args.prompt, images, system=args.system, sampling=settings.sampling, vision=settings.vision
    )
    if args.show_prompt:
        sys.stderr.write(engine.render_prompt(request) + "\n")
    text, stats = stream_answer(engine.stream_chat(request), None if args.json else sys.stdout)
    if args.json:
        _dump(
            {
                "model": str(engine.info.name if engine.info else ""),
                "text": text,
                "stats": stats.to_dict(),
            }
        )
    elif args.stats:
        print_stats(stats)
    return 0


def cmd_detect(args: argparse.Namespace, settings: AppSettings) -> int:
    image = load_image(args.image)
    labels = split_labels(args.labels)
    grounding_prompt(labels)  # an empty label list raises InputError before the model loads
    if args.draw:
        save_target = Path(args.draw)
        if save_target.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise InputError(f"cannot write {args.draw}: use a .png, .jpg or .webp file name")
    engine = open_engine(args, settings)
    request = detection_request(image, labels, settings.sampling, settings.vision)
    text, stats = stream_answer(engine.stream_chat(request), None)
    result = parse_detections(text, image.width, image.height)
    if args.draw:
        drawing = draw_detections(image.image, result.detections)
        save_drawing(drawing, Path(args.draw), protect=[Path(args.image)])
    _dump(
        {
            "image": args.image,
            "width": image.width,
            "height": image.height,
            "labels": list(labels),
            **result.to_dict(),
            "raw": text,
            "stats": stats.to_dict(),
        }
    )
    return 0


def cmd_tools(args: argparse.Namespace, settings: AppSettings) -> int:
    tools = load_tool_specs(args.tools)
    engine = open_engine(args, settings)
    request = ChatRequest.single(
        args.prompt, system=args.system, sampling=settings.sampling, tools=tools
    )
    text, _stats = stream_answer(engine.stream_chat(request), None if args.json else sys.stdout)
    parsed = parse_tool_calls(text)
    if args.json:
        _dump(
            {
                "text": text,
                "content": parsed.content,
                "calls": [c.to_dict() for c in parsed.calls],
                "errors": list(parsed.errors),
            }
        )
    else:
        for call in parsed.calls:
            sys.stdout.write(f"call: {json.dumps(call.to_dict(), ensure_ascii=False)}\n")
        for err in parsed.errors:
            sys.stderr.write(f"lfmdesk: note: {err}\n")
    return 0


def cmd_tiles(args: argparse.Namespace, settings: AppSettings) -> int:
    image = load_image(args.image)
    plan = plan_tiles(image.width, image.height, settings.vision)
    if args.json:
        _dump({"image": args.image, **plan.to_dict()})
        return 0
    rows, cols = plan.grid
    out = [f"{terminal_safe(args.image)}: {image.width}x{image.height}"]
    if plan.tiles:
        out.append(
            f"split into {rows} x {cols} tiles of 512 px (image resized to "
            f"{plan.resized_size[0]}x{plan.resized_size[1]})"
        )
        out += [
            f"  tile r{t.row + 1}c{t.col + 1}: box {t.box}, {t.tokens} tokens" for t in plan.tiles
        ]
    if plan.thumbnail is not None:
        kind = "thumbnail" if plan.tiles else "single view"
        th = plan.thumbnail
        out.append(f"{kind}: {th.size[0]}x{th.size[1]}, {th.tokens} tokens")
    out.append(f"image tokens: {plan.image_tokens} (+{plan.marker_tokens} marker tokens)")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


_CHAT_HELP = "commands: /image PATH (attach to next message), /reset, /quit"


def cmd_chat(args: argparse.Namespace, settings: AppSettings) -> int:
    pending: list[LoadedImage] = [load_image(p) for p in args.images]
    engine = open_engine(args, settings)
    history: list[Message] = [Message("system", args.system)] if args.system else []
    sys.stderr.write(
        f"lfmdesk chat with {engine.info.name if engine.info else '?'}. {_CHAT_HELP}\n"
    )
    while True:
        try:
            line = input("> " if sys.stdin.isatty() else "")
        except EOFError:
            return 0
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd, _, rest = line.partition(" ")
            if cmd in ("/quit", "/exit"):
                return 0
            if cmd == "/reset":
                history, pending = history[:1] if args.system else [], []
                sys.stderr.write("conversation cleared\n")
            elif cmd == "/image":
                try:
                    pending.append(load_image(rest.strip()))
                    sys.stderr.write(f"attached {rest.strip()} ({len(pending)} pending)\n")
                except InputError as exc:
                    sys.stderr.write(f"lfmdesk: error: {exc}\n")
            else:
                sys.stderr.write(_CHAT_HELP + "\n")
            continue
        history.append(Message("user", line, tuple(pending)))
        pending = []
        request = ChatRequest(tuple(history), settings.sampling, settings.vision)
        try:
            text, _ = stream_answer(engine.stream_chat(request), sys.stdout)
        except KeyboardInterrupt:
            engine.cancel()
            history.pop()
            sys.stderr.write("\n(stopped)\n")
            continue
        history.append(Message("assistant", text))


def cmd_models(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._models import MODEL_ACTIONS

    return MODEL_ACTIONS[args.action](args)


def cmd_annotate(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._annotate import cmd_annotate as run

    return run(args, settings)


def cmd_export(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._dataset import cmd_export as run

    return run(args, settings)


def cmd_import(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._dataset import cmd_import as run

    return run(args, settings)


def cmd_live(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._live import cmd_live as run

    return run(args, settings)


def cmd_eval(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._eval import cmd_eval as run

    return run(args, settings)


def cmd_train(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._train import cmd_train as run

    return run(args, settings)


def cmd_serve(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._serve import cmd_serve as run

    return run(args, settings)


def cmd_adapters(args: argparse.Namespace, settings: AppSettings) -> int:
    from lfmdesk.cli._train import cmd_adapters as run

    return run(args, settings)


COMMANDS: dict[str, Command] = {
    "ask": cmd_ask,
    "detect": cmd_detect,
    "chat": cmd_chat,
    "tools": cmd_tools,
    "tiles": cmd_tiles,
    "models": cmd_models,
    "annotate": cmd_annotate,
    "export": cmd_export,
    "import": cmd_import,
    "live": cmd_live,
    "eval": cmd_eval,
    "serve": cmd_serve,
    "train": cmd_train,
    "adapters": cmd_adapters,
}
