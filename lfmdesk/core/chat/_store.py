"""Saved conversations: one JSON file each, images once each as PNG named by content hash.

Layout under ``root`` (default ``data_dir()/conversations``)::

    <id>.json            Conversation.to_json(), written atomically
    images/<sha256>.png  every image the turns refer to, lossless (the same pixels and hash)

A damaged file never breaks the list: it is skipped and reported in ``problems`` (one
warning each). Only regular files are read, within a size limit; JSON nested deeper than
anything lfmdesk writes, or not UTF-8, is a damaged file. A conversation saved by a newer
lfmdesk (a higher ``schema_version``) is read as far as this version understands it and
never saved over; temporary files a killed save left behind are deleted by :meth:`list`.

:meth:`ConversationStore.save` writes the images a conversation's turns use before the
conversation itself, wherever they came from (a dropped file, a project image, a capture):
a saved conversation never refers to an image the store does not have.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lfmdesk.core._atomic import remove_stale_temps, write_bytes_atomic, write_text_atomic
from lfmdesk.core._errors import ImageError, InputError
from lfmdesk.core._files import DamagedFileError, MiB, read_json, reason
from lfmdesk.core.chat._conversation import (
    CONVERSATION_SCHEMA,
    DEFAULT_TITLE,
    Conversation,
    is_conversation_id,
)
from lfmdesk.core.images._load import LoadedImage, load_image

__all__ = ["ConversationStore", "ConversationSummary", "data_dir"]

log = logging.getLogger("lfmdesk")

_IMAGE_ID = re.compile(r"[0-9a-f]{64}")
# PNG level 1: a 12 MP photo saves in well under a second; higher levels gain little on photos.
_PNG_LEVEL = 1
_CONVERSATION_LIMIT = 64 * MiB


def data_dir() -> Path:
    """The platform's data folder for lfmdesk (``LFMDESK_DATA_DIR`` overrides it)."""
    override = os.environ.get("LFMDESK_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("lfmdesk", appauthor=False))


@dataclass(frozen=True)
class ConversationSummary:
    """One line of the conversation list.

    Attributes:
        id: the conversation's id.
        title: its title.
        updated: last change, seconds since the epoch.
        turns: how many turns it has.
    """

    id: str
    title: str
    updated: float
    turns: int


class ConversationStore:
    """Conversations and their images on disk.

    Args:
        root: the folder; ``None`` means ``data_dir()/conversations``.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else data_dir() / "conversations"
        self.problems: tuple[str, ...] = ()
        self._warned: set[str] = set()  # the list is refreshed often: warn once per problem

    @property
    def images_dir(self) -> Path:
        """Where images are kept."""
        return self.root / "images"

    def _path(self, conversation_id: str) -> Path:
        if not is_conversation_id(conversation_id):
            raise InputError(f"{conversation_id[:70]!r} is not a valid conversation id")
        return self.root / f"{conversation_id}.json"

    def new(self, title: str = DEFAULT_TITLE) -> Conversation:
        """A fresh, empty conversation (not saved until :meth:`save`)."""
        now = time.time()
        return Conversation(id=uuid.uuid4().hex, title=title, created=now, updated=now, turns=())

    def save(
        self, conversation: Conversation, images: Mapping[str, LoadedImage] | None = None
    ) -> Path:
        """Write ``conversation`` atomically, after the images its turns use; returns its file.

        Args:
            conversation: what to save.
            images: the images its turns refer to, by content hash (``ChatThread.images``);
                those not stored yet are written first. Ids missing here and on disk are
                left as they are (``load_images`` reports them).

        Raises:
            InputError: the file there was saved by a newer lfmdesk (it is kept).
        """
        path = self._path(conversation.id)
        version = self._saved_schema(path)
        if version > CONVERSATION_SCHEMA:
            raise InputError(
                f"{path} was saved by a newer lfmdesk (version {version}); "
                "not saving over it — update lfmdesk to continue this conversation"
            )
        for image_id in dict.fromkeys(i for t in conversation.turns for i in t.image_ids):
            image = (images or {}).get(image_id)
            if image is not None:
                self.save_image(image)
        text = json.dumps(conversation.to_json(), ensure_ascii=False, indent=1)
        write_text_atomic(path, text + "\n")
        return path

    @staticmethod
    def _saved_schema(path: Path) -> int:
        try:
            data = read_json(path, _CONVERSATION_LIMIT)
        except (OSError, DamagedFileError):
            return CONVERSATION_SCHEMA
        version = data.get("schema_version") if isinstance(data, dict) else None
        return version if isinstance(version, int) and not isinstance(version, bool) else 1

    def load(self, conversation_id: str) -> Conversation:
        """Read a saved conversation.

        Raises:
            InputError: it does not exist, or its file is damaged or cannot be read.
        """
        path = self._path(conversation_id)
        try:
            data = read_json(path, _CONVERSATION_LIMIT)
        except FileNotFoundError:
            raise InputError(f"conversation {conversation_id} does not exist") from None
        except OSError as exc:
            raise InputError(f"cannot read conversation file {path}: {reason(exc)}") from None
        except DamagedFileError as exc:
            raise InputError(f"{path} is damaged: {exc}") from None
        try:
            return Conversation.from_json(data)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation (its images stay until :meth:`prune_images`)."""
        self._path(conversation_id).unlink(missing_ok=True)

    def list(self) -> list[ConversationSummary]:
        """Every readable conversation, newest first; damaged files go to ``problems``."""
        found: list[ConversationSummary] = []
        problems: list[str] = []
        remove_stale_temps(self.root)
        remove_stale_temps(self.images_dir)
        for path in sorted(self.root.glob("*.json")) if self.root.is_dir() else ():
            if path.name.startswith("."):
                continue
            try:
                conv = self.load(path.stem)
            except InputError as exc:
                problems.append(f"skipped {exc}")
                if str(exc) not in self._warned:
                    self._warned.add(str(exc))
                    log.warning("skipped conversation: %s", exc)
                continue
            found.append(ConversationSummary(conv.id, conv.title, conv.updated, len(conv.turns)))
        self.problems = tuple(problems)
        return sorted(found, key=lambda s: (-s.updated, s.id))

    # --- images ----------------------------------------------------------------------------

    def _image_path(self, image_id: str) -> Path:
        if not _IMAGE_ID.fullmatch(image_id):
            raise InputError(f"{image_id[:70]!r} is not an image id (a sha256 in hex)")
        return self.images_dir / f"{image_id}.png"

    def save_image(self, image: LoadedImage) -> str:
        """Store ``image`` once (a no-op when it is already there); returns its id."""
        path = self._image_path(image.content_hash)
        if not path.exists():
            data = io.BytesIO()
            image.image.save(data, format="PNG", compress_level=_PNG_LEVEL)
            write_bytes_atomic(path, data.getvalue())
        return image.content_hash

    def load_image(self, image_id: str) -> LoadedImage:
        """The stored image: the same pixels and content hash as when it was saved.

        Raises:
            ImageError: it is missing or damaged.
        """
        path = self._image_path(image_id)
        if not path.is_file():
            raise ImageError(f"image {image_id[:12]}… is missing from {self.images_dir}")
        image = load_image(path)
        if image.content_hash != image_id:
            raise ImageError(f"stored image {path} is damaged (its pixels changed)")
        return image

    def load_images(self, conversation: Conversation) -> dict[str, LoadedImage]:
        """Every image ``conversation`` refers to that can be read (others are logged)."""
        images: dict[str, LoadedImage] = {}
        for image_id in dict.fromkeys(i for t in conversation.turns for i in t.image_ids):
            try:
                images[image_id] = self.load_image(image_id)
            except InputError as exc:
                log.warning("%s", exc)
        return images

    def prune_images(self, keep: Iterable[str] = ()) -> int:
        """Delete images no saved conversation refers to (nor ``keep``); returns how many."""
        used = set(keep)
        summaries = self.list()
        if self.problems:
            # A damaged file may still refer to images: never delete what cannot be checked.
            log.warning("not pruning images: %d conversation files are damaged", len(self.problems))
            return 0
        for summary in summaries:
            conv = self.load(summary.id)
            used.update(i for t in conv.turns for i in t.image_ids)
        removed = 0
        for path in self.images_dir.glob("*.png") if self.images_dir.is_dir() else ():
            if path.stem not in used and _IMAGE_ID.fullmatch(path.stem):
                path.unlink(missing_ok=True)
                removed += 1
        return removed
