"""The answer cache: each model answer an evaluation got, kept so it is never asked again.

An answer is stored under a key made of everything it depends on: the image's content (the
sha256 of its file), the model (variant, and the backend when it is remote), the tiling, the
prompt, constrained or free decoding and the sampling settings. Running a configuration again
reads its answers back and makes no model call; an evaluation stopped by Cancel or Ctrl-C
resumes from the first answer it does not have. One small JSON file per answer, written
atomically, under ``PROJECT/.lfmdesk/eval/answers/``::

    cache = AnswerCache(project.meta / "eval" / "answers")
    key = answer_key(image_hash, "8bit", vision, prompt, sampling)
    cache.get(key) or cache.put(key, CachedAnswer(text, 1.2, 256, 512 << 20))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lfmdesk.core._atomic import write_text_atomic
from lfmdesk.core._settings import SamplingSettings, VisionSettings

__all__ = ["AnswerCache", "CachedAnswer", "answer_key", "file_hash"]

_VERSION = 1
_CHUNK = 1 << 20


def file_hash(path: Path) -> str:
    """sha256 of the file at ``path`` (the image's content, whatever its name)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def answer_key(
    image: str,
    model: str,
    vision: VisionSettings,
    prompt: str,
    sampling: SamplingSettings,
) -> str:
    """The cache key of one answer (hex sha256).

    Args:
        image: the image file's sha256.
        model: the model's identity: a variant key, repo id or folder, and the backend.
        vision: the tiling the image is seen with.
        prompt: the text sent with the image.
        sampling: the decoding settings, ``constrained`` included.
    """
    identity = {
        "version": _VERSION,
        "image": image,
        "model": model,
        "vision": list(vision.key()),
        "prompt": prompt,
        "sampling": dataclasses.asdict(sampling),
    }
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    """One answer and what it cost when it was made.

    Attributes:
        text: the model's whole answer.
        seconds: wall time from request to last token.
        image_tokens: image tokens in the prompt (0 when the backend does not say).
        peak_memory_bytes: peak memory during the answer (0 when unknown).
        finish_reason: "stop" or "length".
    """

    text: str
    seconds: float
    image_tokens: int = 0
    peak_memory_bytes: int = 0
    finish_reason: str = "stop"


class AnswerCache:
    """Answers on disk, one JSON file per key.

    Args:
        folder: where the files live (created on the first write).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedAnswer | None:
        """The answer stored under ``key``; None when there is none or it is unreadable."""
        path = self._path(key)
        if path.is_symlink() or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            return CachedAnswer(
                text=str(data["text"]),
                seconds=float(data["seconds"]),
                image_tokens=int(data.get("image_tokens", 0)),
                peak_memory_bytes=int(data.get("peak_memory_bytes", 0)),
                finish_reason=str(data.get("finish_reason", "stop")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is asked again, and replaced

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Store ``answer`` under ``key`` atomically."""
        data = {"version": _VERSION, **dataclasses.asdict(answer)}
        write_text_atomic(self._path(key), json.dumps(data, ensure_ascii=False) + "\n")

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None
