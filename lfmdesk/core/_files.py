"""Opening files that arrive as data: regular files only, never a FIFO, a device or a folder.

Opening a FIFO for reading blocks until something writes to it, and a device such as
``/dev/zero`` never ends: a model folder, an image or a dataset that names one would hang
lfmdesk for good. :func:`open_regular` opens without blocking, looks at what it opened, and
hands back a normal blocking file only when it is a regular file. The check is made on the
open descriptor, so the file cannot be swapped between the check and the read.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

__all__ = ["NotRegularFileError", "open_regular", "read_regular"]

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_FLAGS |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class NotRegularFileError(OSError):
    """The path is not a regular file (or it is larger than the caller allows).

    Attributes:
        kind: What it is instead, e.g. ``"a FIFO (named pipe)"``; empty for a file too large.
    """

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for reading in binary mode, refusing anything but a regular file.

    Symbolic links are followed (a Hugging Face snapshot is made of them); what they point at
    must be a regular file.

    Raises:
        NotRegularFileError: ``path`` is a FIFO, a device, a socket or a folder; the message
            says which.
        OSError: it cannot be opened (missing, no permission, ...).
    """
    fd = os.open(path, _FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _kind(mode)
            raise NotRegularFileError(f"{os.fsdecode(path)} is {kind}, not a regular file", kind)
        if _FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refusing one larger than ``limit`` bytes.

    Raises:
        NotRegularFileError: not a regular file, or larger than ``limit``.
        OSError: it cannot be read.
    """
    with open_regular(path) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise NotRegularFileError(
            f"{os.fsdecode(path)} is larger than {limit // 1_000_000 or limit} "
            f"{'MB' if limit >= 1_000_000 else 'bytes'}, more than lfmdesk reads from such a file"
        )
    return data
