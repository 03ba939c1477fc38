"""``lfmdesk models list|download|remove``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from lfmdesk.cli._output import consume_download
from lfmdesk.core import (
    DEFAULT_VARIANT_KEY,
    VARIANTS,
    InputError,
    download,
    format_size,
    list_cached,
    remove_cached,
    resolve_model,
)

__all__ = ["MODEL_ACTIONS"]


def _repo_of(spec: str) -> str:
    ref = resolve_model(spec)
    if ref.repo_id is None:
        raise InputError(f"{spec} is a local folder; models download/remove take a variant or repo")
    return ref.repo_id


def models_list(args: argparse.Namespace) -> int:
    cached = {c.repo_id: c for c in list_cached()}
    rows: list[dict[str, Any]] = []
    for v in VARIANTS:
        c = cached.pop(v.repo_id, None)
        rows.append(
            {
                "key": v.key,
                "repo_id": v.repo_id,
                "family": v.family,
                "size_bytes": c.size_bytes if c else v.size_bytes,
                "downloaded": bool(c and c.complete),
                "default": v.key == DEFAULT_VARIANT_KEY,
            }
        )
    rows += [
        {
            "key": "",
            "repo_id": c.repo_id,
            "family": "",
            "size_bytes": c.size_bytes,
            "downloaded": c.complete,
            "default": False,
        }
        for c in cached.values()
    ]
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    for r in rows:
        mark = "*" if r["default"] else " "
        state = "downloaded" if r["downloaded"] else "-"
        size = format_size(int(r["size_bytes"]))
        sys.stdout.write(f"{mark} {r['key']:<14} {r['repo_id']:<42} {size:>9}  {state}\n")
    sys.stdout.write("* default. Download with: lfmdesk models download KEY\n")
    return 0


def models_download(args: argparse.Namespace) -> int:
    path = consume_download(download(_repo_of(args.model)))
    sys.stdout.write(f"{path}\n")
    return 0


def models_remove(args: argparse.Namespace) -> int:
    repo = _repo_of(args.model)
    freed = remove_cached(repo)
    sys.stdout.write(f"removed {repo} ({format_size(freed)} freed)\n")
    return 0


MODEL_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": models_list,
    "download": models_download,
    "remove": models_remove,
}
