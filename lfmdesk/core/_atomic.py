"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every write goes to a temporary file in the target's folder (``.NAME.PID-XXXXXXXX.tmp``),
is fsync'd and renamed over the target. The temporary file is created with mode 0666 less
the umask, like any file a program creates, and a file being replaced keeps its mode.
Given ``inside=ROOT``, the folders between ROOT and the file must be real folders: a
symbolic link there (``OUT/labels -> /elsewhere``) is refused, never written through; the
file itself is replaced as a name, so a link standing in its place is replaced, not
followed. A kill between write and rename leaves only a temporary file, which
:func:`remove_stale_temps` deletes on the next run (its writer's process is gone).

:class:`StagedWrites` replaces many files together: everything is written to temporary
files first, then renamed into place; a failure at any point puts back what was there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "StagedWrites",
    "copy_file_atomic",
    "ensure_folder",
    "keep_damaged",
    "remove_stale_temps",
    "write_bytes_atomic",
    "write_text_atomic",
]

# .NAME.PID-XXXXXXXX.tmp (this version) or .NAME.XXXXXXXX.tmp (tempfile.mkstemp, before it).
_TEMP = re.compile(r"\..+\.(?:(\d+)-[0-9a-f]{8}|[a-z0-9_]{8})\.tmp")
_STALE_SECONDS = 24 * 3600  # a temp file this old is debris even if its PID was reused
_BACKUP_LIMIT = 64 * 1024 * 1024  # StagedWrites keeps a replaced file's bytes to put back


def _symlink_error(path: Path) -> OSError:
    return OSError(errno.ELOOP, "a symbolic link; lfmdesk never writes through one", str(path))


def ensure_folder(folder: Path, inside: Path | None = None) -> list[Path]:
    """Create ``folder`` (and its parents); returns the folders created, outermost first.

    With ``inside``, ``folder`` must be ``inside`` or below it, and every folder from
    ``inside`` down must be a real folder, not a symbolic link (``inside`` itself is
    trusted: the caller resolved it).

    Raises:
        OSError: a symbolic link or a file stands where a folder must be, ``folder`` is
            not inside ``inside``, or the folder cannot be created.
    """
    if inside is None:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        return missing[::-1]
    try:
        parts = folder.relative_to(inside).parts
    except ValueError:
        raise OSError(errno.EXDEV, f"not inside {inside}", str(folder)) from None
    if ".." in parts:
        raise OSError(errno.EXDEV, f"not inside {inside}", str(folder))
    created, current = [], inside
    for part in parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            os.mkdir(current)
            created.append(current)
            continue
        if stat.S_ISLNK(mode):
            raise _symlink_error(current)
        if not stat.S_ISDIR(mode):
            raise NotADirectoryError(errno.ENOTDIR, "a file, not a folder", str(current))
    return created


def _existing_mode(path: Path) -> int | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def _open_temp(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path``: 0666 less the umask, or ``path``'s mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name[:200]}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
        except FileExistsError:
            continue
        mode = _existing_mode(path)
        if mode is not None:
            os.fchmod(fd, mode)
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def _fsync_folder(folder: Path) -> None:
    # The rename itself must reach the disk too, or a crash can resurrect the old name.
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write_temp(path: Path, fill: Callable[[BinaryIO], None]) -> Path:
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_all(fh: BinaryIO, data: bytes) -> None:
    fh.write(data)


def _replace(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_bytes_atomic(path: Path, data: bytes, *, inside: Path | None = None) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync and os.replace.

    Args:
        path: the file to write.
        data: its new content.
        inside: when given, refuse to write through a symbolic link between ``inside``
            and ``path`` (see :func:`ensure_folder`).
    """
    ensure_folder(path.parent, inside)
    _replace(_write_temp(path, lambda fh: _write_all(fh, data)), path)


def write_text_atomic(path: Path, text: str, *, inside: Path | None = None) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"), inside=inside)


def copy_file_atomic(source: Path, path: Path, *, inside: Path | None = None) -> None:
    """Copy the bytes of ``source`` to ``path`` atomically (never writing through a link)."""
    ensure_folder(path.parent, inside)
    _replace(_write_temp(path, lambda fh: _copy_into(source, fh)), path)


def _copy_into(source: Path, fh: BinaryIO) -> None:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(source, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(source))
        while chunk := os.read(fd, 1024 * 1024):
            fh.write(chunk)
    finally:
        os.close(fd)


def _is_stale(name: str, folder: Path, now: float) -> bool:
    match = _TEMP.fullmatch(name)
    if match is None:
        return False
    pid = match.group(1)
    if pid is not None and int(pid) != os.getpid() and not _alive(int(pid)):
        return True
    try:
        return now - os.lstat(folder / name).st_mtime > _STALE_SECONDS
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a PID at all: leave it
    return True


def remove_stale_temps(folder: Path, *, recursive: bool = False) -> int:
    """Delete temporary files a killed writer left in ``folder``; returns how many.

    A temporary file is stale when the process that wrote it is gone, or when it is more
    than a day old. Folders whose name starts with a dot are not entered (``.lfmdesk`` is
    when it is ``folder`` itself); symbolic links are never followed.
    """
    removed, now = 0, time.time()
    for current, dirs, files in os.walk(folder) if folder.is_dir() else ():
        dirs[:] = [d for d in dirs if recursive and not d.startswith(".")]
        for name in files:
            if name.endswith(".tmp") and _is_stale(name, Path(current), now):
                with contextlib.suppress(OSError):
                    os.unlink(Path(current) / name)
                    removed += 1
    return removed


class StagedWrites:
    """Write many files as one change: staged first, then renamed; a failure undoes it all.

    ::

        staged = StagedWrites(project.root)
        staged.copy(source_image, project.root / "a.png")
        staged.write(project.root / ".lfmdesk/annotations/a.png.json", data)
        staged.commit()          # or an exception: nothing under project.root changed

    Args:
        inside: every file goes under this folder, through real folders only.
    """

    def __init__(self, inside: Path) -> None:
        self.inside = inside
        self._staged: list[tuple[Path, Path]] = []  # (temp file, target)
        self._created: list[Path] = []

    def _stage(self, path: Path, fill: Callable[[BinaryIO], None]) -> None:
        try:
            self._created += ensure_folder(path.parent, self.inside)
            self._staged.append((_write_temp(path, fill), path))
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = str(path)  # say which file could not be written
            raise

    def write(self, path: Path, data: bytes) -> None:
        """Stage ``data`` as the new content of ``path``."""
        self._stage(path, lambda fh: _write_all(fh, data))

    def copy(self, source: Path, path: Path) -> None:
        """Stage a copy of the regular file ``source`` at ``path``."""
        self._stage(path, lambda fh: _copy_into(source, fh))

    def discard(self) -> None:
        """Delete every staged file and the folders made for them."""
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._staged, self._created = [], []

    def commit(self) -> None:
        """Rename every staged file into place; on failure put back what was there."""
        done: list[tuple[Path, bytes | None]] = []
        try:
            for tmp, path in self._staged:
                before = _previous(path)
                os.replace(tmp, path)
                done.append((path, before))
        except BaseException:
            for path, before in reversed(done):
                with contextlib.suppress(OSError):
                    if before is None:
                        path.unlink()
                    else:
                        write_bytes_atomic(path, before)
            self.discard()
            raise
        for folder in {path.parent for _, path in self._staged}:
            _fsync_folder(folder)
        self._staged, self._created = [], []


def _previous(path: Path) -> bytes | None:
    """The bytes at ``path`` before it is replaced (None: nothing there to put back)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EEXIST, "something that is not a file is in the way", str(path))
    if st.st_size > _BACKUP_LIMIT:
        raise OSError(errno.EFBIG, "too large to replace safely", str(path))
    return path.read_bytes()


def keep_damaged(path: Path) -> Path:
    """Rename the damaged file at ``path`` to ``NAME.bad-YYYYMMDD-HHMMSS`` (kept, not lost).

    Called before a file lfmdesk cannot read is replaced; returns the new name.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 0
    while target.exists() or target.is_symlink():
        n += 1
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
    os.replace(path, target)
    return target
