"""Which dataset format a folder or file looks like, so a wrong ``--format`` is named.

Reading a COCO folder as YOLO finds the images but no labels and would "import" them with
no boxes; :func:`looks_like` lets the import say "this looks like a COCO dataset" instead.
Each test looks for what only that format has, reads at most a few small files, and never
raises: a file it cannot read just does not count.

    looks_like(Path("coco_out"))      # ("coco",)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import InputError
from lfmdesk.core._files import read_regular
from lfmdesk.core.datasets.formats._common import dataset_files, load_json

__all__ = ["looks_like"]

_PEEK = 20  # files looked at per format


def _json_docs(paths: Iterator[Path]) -> Iterator[Any]:
    for path in itertools.islice(paths, _PEEK):
        try:
            yield load_json(path)
        except InputError:
            continue


def _json_candidates(source: Path) -> Iterator[Path]:
    if source.is_file():
        yield source
        return
    yield from (source / "annotations.json", source / "annotations" / "annotations.json")
    yield from sorted(source.glob("*.json"))
    if (source / "annotations").is_dir():
        yield from sorted((source / "annotations").glob("*.json"))


def _is_coco(source: Path) -> bool:
    paths = (p for p in _json_candidates(source) if p.is_file())
    return any(
        isinstance(doc, dict) and isinstance(doc.get("images"), list) and "annotations" in doc
        for doc in _json_docs(paths)
    )


def _is_labelme(source: Path) -> bool:
    paths = iter([source] if source.is_file() else dataset_files(source, (".json",)))
    return any(
        isinstance(doc, dict) and "shapes" in doc and "imagePath" in doc
        for doc in _json_docs(paths)
    )


def _is_voc(source: Path) -> bool:
    if source.is_dir() and (source / "Annotations").is_dir():
        return True
    paths = [source] if source.is_file() else dataset_files(source, (".xml",))
    for path in paths[:_PEEK]:
        try:
            head = read_regular(path, 1 << 20)[:4096]
        except OSError:
            continue
        if b"<annotation" in head:
            return True
    return False


def _is_yolo(source: Path) -> bool:
    if source.is_file():
        return source.suffix.lower() in (".yaml", ".yml")
    if any((source / name).is_file() for name in ("data.yaml", "classes.txt", "obj.names")):
        return True
    for labels in (source / "labels", *source.glob("*/labels")):
        if labels.is_dir() and dataset_files(labels, (".txt",)):
            return True
    return False


_TESTS: dict[str, Callable[[Path], bool]] = {
    "coco": _is_coco,
    "yolo": _is_yolo,
    "voc": _is_voc,
    "labelme": _is_labelme,
}


def looks_like(source: Path) -> tuple[str, ...]:
    """The formats (``coco``, ``yolo``, ``voc``, ``labelme``) ``source`` looks like."""
    found = []
    for name, test in _TESTS.items():
        try:
            if test(source):
                found.append(name)
        except OSError:
            continue
    return tuple(found)
