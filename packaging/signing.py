"""Signing the macOS app inside-out, the way Apple asks for it.

``codesign --deep`` signs everything nested with the options given for the app, so the app's
hardened-runtime exceptions (JIT, unsigned executable memory, no library validation) would be
stamped onto every bundled library, and Apple recommends against it for signing (it is fine
for ``--verify``). Here nested code is signed first, one item at a time: every Mach-O file
that is not a bundle's main executable (dylibs, Python extensions, the bundled Python), deepest
first; then every nested bundle (``.framework``, a helper ``.app``), deepest first; then the
app itself, whose main executable alone carries the entitlements. Symbolic links are not
followed (PyInstaller links ``Contents/Resources`` into ``Contents/Frameworks``), so each file
is signed once.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENTITLEMENTS", "is_mach_o", "nested_code", "sign_commands"]

ENTITLEMENTS = "packaging/entitlements.plist"
_BUNDLES = (".framework", ".app")
# Thin 32/64-bit Mach-O in either byte order, and universal ("fat") binaries.
_MAGICS = {
    bytes.fromhex(magic)
    for magic in ("feedface", "cefaedfe", "feedfacf", "cffaedfe", "cafebabe", "bebafeca")
}

Command = list[str]


def is_mach_o(path: Path) -> bool:
    """A regular file (not a link) that starts like a Mach-O binary."""
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) in _MAGICS


def _depth_first(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (-len(p.parts), str(p)))


def _is_main_executable(path: Path) -> bool:
    """The binary a bundle's own signature covers: the app's, or a framework's."""
    parent = path.parent
    if parent.name == "MacOS" and parent.parent.name == "Contents":
        return parent.parent.parent.suffix == ".app" and path.name == parent.parent.parent.stem
    framework = parent if parent.suffix == ".framework" else parent.parent.parent
    return framework.suffix == ".framework" and path.name == framework.stem


def nested_code(app: Path) -> tuple[list[Path], list[Path]]:
    """``(files, bundles)`` to sign before ``app``, each list deepest first."""
    files: list[Path] = []
    bundles: list[Path] = []
    for folder, dirs, names in os.walk(app):  # links to folders are not entered
        here = Path(folder)
        bundles += [here / d for d in dirs if d.endswith(_BUNDLES)]
        files += [here / n for n in names if is_mach_o(here / n)]
    files = [f for f in files if not _is_main_executable(f)]
    bundles = [b for b in bundles if not b.is_symlink()]
    return _depth_first(files), _depth_first(bundles)


def sign_commands(app: Path, identity: str) -> list[Command]:
    """Every ``codesign`` command that signs ``app`` inside-out, in order.

    Args:
        app: the built ``.app`` bundle.
        identity: a signing identity, or ``-`` for an ad hoc signature (no timestamp then).
    """
    timestamp = [] if identity == "-" else ["--timestamp"]
    base = ["codesign", "--force", "--options", "runtime", *timestamp, "--sign", identity]
    files, bundles = nested_code(app)
    commands = [[*base, str(path)] for path in (*files, *bundles)]
    commands.append([*base[:4], "--entitlements", ENTITLEMENTS, *base[4:], str(app)])
    return commands
