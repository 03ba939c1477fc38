"""Reading files lfmdesk did not write itself: regular files only, bounded, JSON with limits.

Settings, window state, conversations, annotation files and datasets may have been edited by
hand, by another tool or by someone hostile. Everything read from them goes through here:

- only regular files are opened: a FIFO, a device or a folder under a file's name is refused
  at once (opened non-blocking, then checked on the open descriptor, so the file cannot be
  swapped between the check and the read), so nothing can make a read hang;
  :func:`open_regular` hands back a file object for readers that stream (images, weights);
- a file larger than the caller's limit is refused before it is read;
- JSON is parsed strictly: ``NaN``/``Infinity`` and numbers that overflow to infinity are
  refused, and so is nesting deeper than :data:`MAX_JSON_DEPTH` (which would otherwise end in
  a ``RecursionError`` somewhere later); text that is not UTF-8 is a damaged file too.

Problems come out as ``OSError`` (cannot read: absent, not a regular file, too large,
permission) or :class:`DamagedFileError` (read, but not what it should be), each with a
one-line message, so callers keep two ``except`` clauses and never a traceback.

    data = read_json(path, limit=MiB)   # OSError / DamagedFileError
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "MAX_JSON_DEPTH",
    "DamagedFileError",
    "MiB",
    "NotRegularFileError",
    "open_regular",
    "parse_json",
    "read_json",
    "read_regular",
    "read_text",
    "reason",
]

MiB = 1024 * 1024
# Real files nest a handful of levels (a conversation: 5). 100 leaves room and stays far
# below Python's recursion limit for any code that walks the data afterwards.
MAX_JSON_DEPTH = 100
# 2**64 has 20 digits; a longer whole number is no id, size or count any file needs.
_MAX_INT_DIGITS = 20
_KIND = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


class NotRegularFileError(OSError):
    """The path names a FIFO, a device, a socket or a folder, not a file.

    Attributes:
        kind: what it is instead, e.g. ``"a FIFO (named pipe)"``.
    """

    def __init__(self, code: int, message: str, filename: str, kind: str = "") -> None:
        super().__init__(code, message, filename)
        self.kind = kind


class DamagedFileError(ValueError):
    """A file was read but does not hold what it should (not UTF-8, not JSON, too deep)."""


def reason(exc: BaseException) -> str:
    """A short, one-line reason for ``exc`` (an OSError's strerror when it has one)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _open_checked(path: str | os.PathLike[str]) -> int:
    """A descriptor on the regular file at ``path``; never waits on a FIFO or a device."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)  # non-blocking: opening a FIFO with no writer returns at once
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KIND.get(stat.S_IFMT(mode), "not a regular file")
            raise NotRegularFileError(errno.EINVAL, f"{kind}, not a file", os.fsdecode(path), kind)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open the regular file at ``path`` for reading in binary mode.

    Symbolic links are followed (a Hugging Face snapshot is made of them); what they point at
    must be a regular file.

    Raises:
        NotRegularFileError: a FIFO, device, socket or folder is there (never waited on).
        OSError: it cannot be opened (missing, no permission, ...).
    """
    fd = _open_checked(path)
    try:
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    Raises:
        FileNotFoundError: nothing is there.
        NotRegularFileError: a FIFO, device, socket or folder is there (never waited on).
        OSError: it cannot be read, or it is larger than ``limit`` bytes (``EFBIG``).
    """
    fd = _open_checked(path)
    try:
        chunks, size = [], 0
        while chunk := os.read(fd, min(MiB, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise OSError(
                    errno.EFBIG, f"larger than {_size(limit)}; not read", os.fsdecode(path)
                )
        return b"".join(chunks)
    finally:
        os.close(fd)


def _size(limit: int) -> str:
    return f"{limit // MiB} MB" if limit >= MiB else f"{limit} bytes"


def read_text(path: Path, limit: int) -> str:
    """The UTF-8 text of the regular file at ``path`` (a BOM is dropped).

    Raises:
        OSError: see :func:`read_regular`.
        DamagedFileError: it is not UTF-8 text.
    """
    data = read_regular(path, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DamagedFileError(f"not UTF-8 text (byte {exc.start})") from None


def _no_constant(name: str) -> Any:
    raise DamagedFileError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DamagedFileError(f"number {text[:20]} is too large")
    return value


def _whole(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise DamagedFileError(f"number {text[:20]}… is too large")
    return int(text)


def _depth_ok(data: Any) -> bool:
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, (dict, list)):
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True


def parse_json(text: str) -> Any:
    """Parse ``text`` as strict JSON.

    Raises:
        DamagedFileError: not JSON, ``NaN``/``Infinity``, a number too large for a float,
            a whole number of more than 20 digits, or nesting deeper than ``MAX_JSON_DEPTH``.
    """
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite, parse_int=_whole)
    except json.JSONDecodeError as exc:
        raise DamagedFileError(f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise DamagedFileError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # _finite, _whole, _no_constant
        raise DamagedFileError(reason(exc)) from None
    if not _depth_ok(data):
        raise DamagedFileError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def read_json(path: Path, limit: int) -> Any:
    """The JSON document in the regular file at ``path``.

    Raises:
        OSError: see :func:`read_regular`.
        DamagedFileError: see :func:`read_text` and :func:`parse_json`.
    """
    return parse_json(read_text(path, limit))
