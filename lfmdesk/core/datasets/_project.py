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
kill during a save leaves the previous file whole; opening a project deletes the temporary
files a killed lfmdesk left behind. Writes never go through a symbolic link inside the
project (a linked ``.lfmdesk`` or subfolder is refused). A damaged annotation file is
reported, never silently replaced: :meth:`Project.load` raises and the caller decides; a
save over it first keeps it as ``NAME.json.bad-DATE``. A file written by a newer lfmdesk
(a higher ``schema_version``) is read as far as it goes and never overwritten.

Keys name images: a relative POSIX path inside the folder (never ``..``), or an absolute
path for an image kept outside it. A key read from a file that breaks this is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import posixpath
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from lfmdesk.core._atomic import (
    keep_damaged,
    remove_stale_temps,
    write_bytes_atomic,
    write_text_atomic,
)
from lfmdesk.core._errors import ImageError, InputError
from lfmdesk.core._files import DamagedFileError, MiB, read_json, reason
from lfmdesk.core.datasets._annotations import SCHEMA_VERSION, ImageAnnotation, clean_labels
from lfmdesk.core.images._load import LoadedImage, open_image

__all__ = ["IMAGE_SUFFIXES", "META_DIR", "Project", "oriented_size"]

META_DIR = ".lfmdesk"
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
_EXTERNAL = "_external"
_ANNOTATION_LIMIT = 64 * MiB  # ~300,000 boxes; a bigger annotation file is not ours
_PROJECT_LIMIT = MiB
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
    # isdecimal, not isdigit: "²" is a digit int() cannot read.
    return [int(p) if p.isdecimal() else p.casefold() for p in re.split(r"(\d+)", text)]


def check_key(key: str) -> str:
    """``key`` if it is a valid image key, else InputError (a path that would escape).

    A relative key is a POSIX path of plain names (no ``..``, ``.`` or empty parts); an
    absolute key is a normalized absolute path.
    """
    if not isinstance(key, str) or not key or "\0" in key:
        raise InputError(f"{key!r} is not an image name")
    if Path(key).is_absolute():
        if os.path.normpath(key) != key and posixpath.normpath(key) != key:
            raise InputError(f"{key!r}: an outside image must be a plain absolute path")
        return key
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InputError(f"{key!r}: an image name cannot leave the project folder")
    return key


def schema_of(data: Any) -> int:
    """The ``schema_version`` of a saved JSON document (1 when missing or not a number)."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


class Project:
    """A folder of images and their annotations.

    Args:
        root: the folder. It must exist; ``.lfmdesk/`` is created on the first save.
            Temporary files a killed lfmdesk left in it are deleted.

    Raises:
        InputError: ``root`` is not a folder.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise InputError(f"{root}: not a folder")
        self.meta = self.root / META_DIR
        self._warnings: dict[Path, str] = {}
        remove_stale_temps(self.root, recursive=True)
        if self.meta.is_dir() and not self.meta.is_symlink():
            remove_stale_temps(self.meta, recursive=True)

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per damaged file met so far (skipped, or kept as ``.bad-DATE``)."""
        return tuple(self._warnings.values())

    def _warn(self, path: Path, message: str) -> None:
        """Note one warning per damaged file (the scan runs often); callers show them."""
        self._warnings.setdefault(path, message)

    # --- images ------------------------------------------------------------------------

    def images(self) -> tuple[str, ...]:
        """Every image of the project: the folder's own (recursively, hidden folders
        skipped) in natural order, then outside images that have annotations.

        A folder that cannot be read (or vanishes during the scan) is skipped; only
        regular files count.
        """
        own = []
        for current, dirs, files in os.walk(self.root):  # errors ignored, links not followed
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            base = Path(current)
            for name in files:
                path = base / name
                wanted = Path(name).suffix.lower() in IMAGE_SUFFIXES and name[0] != "."
                if wanted and path.is_file():
                    own.append(path.relative_to(self.root).as_posix())
        own.sort(key=_natural_key)
        external = sorted(self._external_images(), key=_natural_key)
        return (*own, *external)

    def _external_images(self) -> Iterator[str]:
        folder = self.meta / "annotations" / _EXTERNAL
        try:
            paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
        except OSError:
            paths = []
        for path in paths:
            try:
                data = read_json(path, _ANNOTATION_LIMIT)
                image = data.get("image") if isinstance(data, dict) else None
                key = check_key(image) if isinstance(image, str) else ""
            except (OSError, DamagedFileError, InputError) as exc:
                self._warn(path, f"skipped {path}: {reason(exc)}")
                continue
            # Only an absolute path whose own file this is: "../../x" or a key that
            # belongs to another file would make export and annotate write elsewhere.
            if not Path(key).is_absolute() or self.annotation_path(key) != path:
                self._warn(path, f"skipped {path}: its image {image!r} does not belong here")
                continue
            yield key

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
        """Where the image named ``key`` is on disk (InputError for a key that escapes)."""
        key = check_key(key)
        path = Path(key)
        return path if path.is_absolute() else self.root / PurePosixPath(key)

    def annotation_path(self, key: str) -> Path:
        """Where the annotation of the image named ``key`` is saved."""
        key = check_key(key)
        if Path(key).is_absolute():
            digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
            name = f"{digest}-{Path(key).name}.json"
            return self.meta / "annotations" / _EXTERNAL / name
        return self.meta / "annotations" / PurePosixPath(f"{key}.json")

    # --- annotations -------------------------------------------------------------------

    def _read(self, path: Path) -> Any:
        """The JSON at ``path``; None when absent, InputError when unreadable or damaged."""
        try:
            return read_json(path, _ANNOTATION_LIMIT)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({reason(exc)})") from None
        except DamagedFileError as exc:
            raise InputError(f"{path}: damaged annotation file ({exc})") from None

    def load(self, key: str) -> ImageAnnotation | None:
        """The saved annotation of ``key``; None if there is none yet.

        A file from a newer lfmdesk is read as far as this version understands it.

        Raises:
            InputError: the file exists but is damaged or unreadable (it is left as it is).
        """
        path = self.annotation_path(key)
        data = self._read(path)
        if data is None:
            return None
        try:
            ann = ImageAnnotation.from_dict(data)
        except InputError as exc:
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

    def check_replaceable(self, path: Path, what: str = "annotation file") -> None:
        """Before ``path`` is replaced: keep a damaged file there as ``NAME.bad-DATE``.

        Raises:
            InputError: the file there was written by a newer lfmdesk; it must not be
                replaced by an older layout.
        """
        try:
            data = read_json(path, _ANNOTATION_LIMIT)
        except FileNotFoundError:
            return
        except (OSError, DamagedFileError):
            if path.is_file() and not path.is_symlink():
                kept = keep_damaged(path)
                self._warn(kept, f"kept the damaged {what} {path} as {kept.name}")
            return
        if schema_of(data) > SCHEMA_VERSION:
            raise InputError(
                f"{path}: written by a newer lfmdesk (schema {schema_of(data)}); "
                "not replacing it — update lfmdesk to change it"
            )

    def save(self, ann: ImageAnnotation) -> Path:
        """Write ``ann`` atomically; returns the file written.

        Raises:
            InputError: the file there was written by a newer lfmdesk (it is kept).
            OSError: it cannot be written, or a symbolic link inside the project is in
                the way (nothing is written through it).
        """
        path = self.annotation_path(ann.image)
        text = json.dumps(ann.to_dict(), ensure_ascii=False, indent=1)
        self.check_replaceable(path, "annotation file")
        write_text_atomic(path, text + "\n", inside=self.root)
        return path

    def annotation_bytes(self, ann: ImageAnnotation) -> bytes:
        """What :meth:`save` writes for ``ann`` (for staged writes)."""
        return (json.dumps(ann.to_dict(), ensure_ascii=False, indent=1) + "\n").encode("utf-8")

    # --- labels ------------------------------------------------------------------------

    def labels(self) -> tuple[str, ...]:
        """The project's label list (saved order); empty when none was saved.

        ``"labels": "car, bus"`` (a string, written by hand) is read as a comma-separated
        list; labels that cannot be used are skipped.
        """
        path = self.project_file
        try:
            data = read_json(path, _PROJECT_LIMIT)
        except FileNotFoundError:
            return ()
        except (OSError, DamagedFileError) as exc:
            self._warn(path, f"ignored {path}: {reason(exc)}")
            return ()
        raw = data.get("labels", ()) if isinstance(data, dict) else ()
        items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else ()
        return clean_labels(items, self._label_refused)

    def _label_refused(self, why: str) -> None:
        self._warn(self.project_file, f"{self.project_file}: skipped a label: {why}")

    @property
    def project_file(self) -> Path:
        """``.lfmdesk/project.json``: the label list."""
        return self.meta / "project.json"

    def labels_bytes(self, labels: Sequence[str]) -> bytes:
        """What :meth:`save_labels` writes (blanks, repeats, unsavable labels dropped)."""
        clean = clean_labels(labels, self._label_refused)
        data = {"schema_version": SCHEMA_VERSION, "labels": list(clean)}
        return (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")

    def save_labels(self, labels: Sequence[str]) -> None:
        """Save the label list (blanks, repeats and labels that cannot be saved dropped).

        Raises:
            InputError: ``project.json`` was written by a newer lfmdesk (it is kept).
            OSError: it cannot be written (or a symbolic link is in the way).
        """
        data = self.labels_bytes(labels)
        self.check_replaceable(self.project_file, "project file")
        write_bytes_atomic(self.project_file, data, inside=self.root)
