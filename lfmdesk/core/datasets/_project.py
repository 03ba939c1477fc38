"""A project: a folder of images plus their annotations, saved beside them.

Layout::

    PROJECT/                          the user's images (never modified or moved)
        street.png
        trips/beach.jpg
        .lfmdesk/
            project.json              {"schema_version": 1, "labels": ["car", "person"]}
            annotations/street.png.json         one ImageAnnotation each, written atomically
            annotations/trips/beach.jpg.json
            annotations/_external/<key>.json    images kept outside the folder

Every save is atomic (temp file in the same folder, fsync, ``os.replace``), so a crash or a
kill during a save leaves the previous file whole. A damaged annotation file is reported,
never silently replaced: :meth:`Project.load` raises and the caller decides.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from PIL import Image

from lfmdesk.core._atomic import write_bytes_atomic, write_text_atomic
from lfmdesk.core._errors import ImageError, InputError
from lfmdesk.core.datasets._annotations import SCHEMA_VERSION, ImageAnnotation
from lfmdesk.core.images._load import LoadedImage, open_image

__all__ = ["IMAGE_SUFFIXES", "META_DIR", "Project", "oriented_size"]

META_DIR = ".lfmdesk"
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
_EXTERNAL = "_external"
# EXIF orientations 5-8 turn the picture a quarter: width and height swap.
_QUARTER_TURNS = {5, 6, 7, 8}


def oriented_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image at ``path`` as displayed, EXIF rotation applied.

    Reads only the header. Raises :class:`ImageError` when the file is not an image.
    """
    try:
        with open_image(path) as im:
            width, height = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None
    return (height, width) if orientation in _QUARTER_TURNS else (width, height)


def _natural_key(text: str) -> list[object]:
    return [int(p) if p.isdigit() else p.casefold() for p in re.split(r"(\d+)", text)]


class Project:
    """A folder of images and their annotations.

    Args:
        root: the folder. It must exist; ``.lfmdesk/`` is created on the first save.

    Raises:
        InputError: ``root`` is not a folder.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise InputError(f"{root}: not a folder")
        self.meta = self.root / META_DIR

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    # --- images ------------------------------------------------------------------------

    def images(self) -> tuple[str, ...]:
        """Every image of the project: the folder's own (recursively, hidden folders
        skipped) in natural order, then outside images that have annotations."""
        own = [
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(self.root).parts)
        ]
        own.sort(key=_natural_key)
        external = sorted(self._external_images(), key=_natural_key)
        return (*own, *external)

    def _external_images(self) -> Iterator[str]:
        folder = self.meta / "annotations" / _EXTERNAL
        for path in folder.glob("*.json") if folder.is_dir() else ():
            try:
                yield str(json.loads(path.read_text("utf-8"))["image"])
            except (OSError, ValueError, KeyError, TypeError):
                continue

    def key(self, image: Path | str) -> str:
        """The project's name for ``image``: relative POSIX path inside the folder,
        else the absolute path."""
        path = Path(image)
        if not path.is_absolute():
            path = self.root / path
        path = path.resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def key_for(self, image: LoadedImage, spill: Path) -> str:
        """The key of a decoded image: its file's key, or, for pixels with no file behind
        them (pasted or dropped data), the key of a lossless PNG of them saved in ``spill``
        once (named by content hash, so pasting the same picture again finds its boxes)."""
        source = Path(image.source)
        if not image.source.startswith("<") and source.is_file():
            return self.key(source)
        path = spill / f"Pasted {image.content_hash[:12]}.png"
        if not path.is_file():
            buffer = io.BytesIO()
            image.image.save(buffer, format="PNG", compress_level=1)
            write_bytes_atomic(path, buffer.getvalue())
        return self.key(path)

    def image_path(self, key: str) -> Path:
        """Where the image named ``key`` is on disk."""
        path = Path(key)
        return path if path.is_absolute() else self.root / PurePosixPath(key)

    def annotation_path(self, key: str) -> Path:
        """Where the annotation of the image named ``key`` is saved."""
        if Path(key).is_absolute():
            digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
            name = f"{digest}-{Path(key).name}.json"
            return self.meta / "annotations" / _EXTERNAL / name
        return self.meta / "annotations" / PurePosixPath(f"{key}.json")

    # --- annotations -------------------------------------------------------------------

    def load(self, key: str) -> ImageAnnotation | None:
        """The saved annotation of ``key``; None if there is none yet.

        Raises:
            InputError: the file exists but is damaged (it is left as it is).
        """
        path = self.annotation_path(key)
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            ann = ImageAnnotation.from_dict(json.loads(text))
        except (ValueError, InputError) as exc:
            raise InputError(f"{path}: damaged annotation file ({exc})") from None
        # The file names the image; a folder moved wholesale must still match.
        return ann if ann.image == key else dataclasses.replace(ann, image=key)

    def load_or_empty(self, key: str) -> ImageAnnotation:
        """The saved annotation, or an empty one sized from the image header."""
        ann = self.load(key)
        if ann is not None:
            return ann
        width, height = oriented_size(self.image_path(key))
        return ImageAnnotation.empty(key, width, height)

    def save(self, ann: ImageAnnotation) -> Path:
        """Write ``ann`` atomically; returns the file written."""
        path = self.annotation_path(ann.image)
        text = json.dumps(ann.to_dict(), ensure_ascii=False, indent=1)
        write_text_atomic(path, text + "\n")
        return path

    # --- labels ------------------------------------------------------------------------

    def labels(self) -> tuple[str, ...]:
        """The project's label list (saved order); empty when none was saved."""
        try:
            data = json.loads((self.meta / "project.json").read_text("utf-8"))
            return tuple(str(x) for x in data.get("labels", ()))
        except (OSError, ValueError, AttributeError, TypeError):
            return ()

    def save_labels(self, labels: Sequence[str]) -> None:
        """Save the label list (blanks and repeats dropped)."""
        clean = tuple(dict.fromkeys(" ".join(x.split()) for x in labels if x.strip()))
        data = {"schema_version": SCHEMA_VERSION, "labels": list(clean)}
        write_text_atomic(self.meta / "project.json", json.dumps(data, ensure_ascii=False) + "\n")
