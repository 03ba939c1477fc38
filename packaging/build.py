"""Build lfmdesk as an app: ``python packaging/build.py [build|self-test|sign] [options]``.

``build`` (the default) runs PyInstaller on ``packaging/lfmdesk.spec``. On macOS it then makes
``dist/lfmdesk.app`` a signed hardened-runtime app (ad hoc unless
``LFMDESK_CODESIGN_IDENTITY`` names a "Developer ID Application" identity), wraps it in
``dist/lfmdesk-VERSION-arm64.dmg`` and, when notary credentials are set, notarizes and staples
the disk image. On Linux it leaves the one-folder app in ``dist/lfmdesk/`` (``--tarball``
adds ``dist/lfmdesk-VERSION-linux-ARCH.tar.gz``).

``sign [--app PATH]`` (macOS; ``build`` runs it) signs a built app inside-out: nested
libraries, then frameworks, then the app with the entitlements on its main executable only
(``signing.py``; never ``codesign --deep``).

``self-test`` starts the built app's executable with a tiny fixture checkpoint and
``--self-test`` (and, on Linux, ``lfmdesk-bundle-check`` with a generated video); it fails
when either exits non-zero.

``--dry-run`` prints every command, one per line, and runs none of them.

Notarization variables: ``LFMDESK_NOTARY_PROFILE`` (a ``xcrun notarytool
store-credentials`` profile), or all of ``APPLE_ID``, ``APPLE_TEAM_ID`` and
``APPLE_APP_PASSWORD`` (an app-specific password).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import app_info
import signing

__all__ = ["BuildError", "build_commands", "main", "notary_args", "self_test_commands"]

ROOT = app_info.ROOT
HOSTS = {"darwin": "macos", "linux": "linux"}
APPLE_VARS = ("APPLE_ID", "APPLE_TEAM_ID", "APPLE_APP_PASSWORD")
SECRET_VARS = ("APPLE_APP_PASSWORD",)
SELF_TEST_TIMEOUT_S = 600

Command = list[str]


class BuildError(Exception):
    """A problem the person building can fix; the message is one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        self.exit(2, f"build.py: error: {message}\n")


def _python() -> str:
    return sys.executable


def identity(env: Mapping[str, str]) -> str:
    """The codesign identity: ``LFMDESK_CODESIGN_IDENTITY``, or ``-`` (ad hoc)."""
    return env.get("LFMDESK_CODESIGN_IDENTITY", "").strip() or "-"


def notary_args(env: Mapping[str, str]) -> list[str] | None:
    """``notarytool submit`` credentials from the environment, or None when none are set.

    Raises:
        BuildError: only some of the Apple ID variables are set.
    """
    profile = env.get("LFMDESK_NOTARY_PROFILE", "").strip()
    if profile:
        return ["--keychain-profile", profile]
    present = [v for v in APPLE_VARS if env.get(v, "").strip()]
    if not present:
        return None
    if len(present) < len(APPLE_VARS):
        missing = ", ".join(v for v in APPLE_VARS if v not in present)
        raise BuildError(f"notarization needs {missing} too (or set LFMDESK_NOTARY_PROFILE)")
    return [
        *("--apple-id", env["APPLE_ID"]),
        *("--team-id", env["APPLE_TEAM_ID"]),
        *("--password", env["APPLE_APP_PASSWORD"]),
    ]


def _pyinstaller() -> Command:
    return [
        *(_python(), "-m", "PyInstaller", "--noconfirm"),
        *("--distpath", "dist", "--workpath", "build/pyinstaller"),
        "packaging/lfmdesk.spec",
    ]


def _macos_commands(env: Mapping[str, str]) -> list[Command]:
    sign_id = identity(env)
    notary = notary_args(env)
    if notary is not None and sign_id == "-":
        raise BuildError(
            "notarization needs a Developer ID signature: set LFMDESK_CODESIGN_IDENTITY"
        )
    app = f"dist/{app_info.APP_NAME}.app"
    dmg = f"dist/{app_info.dmg_name()}"
    stage = "build/dmg"
    commands: list[Command] = [
        [_python(), "packaging/make_icon.py", "--out", "build/icon"],
        _pyinstaller(),
        [_python(), "packaging/build.py", "sign", "--app", app],  # inside-out, see signing.py
        ["codesign", "--verify", "--deep", "--strict", "--verbose=2", app],
        ["rm", "-rf", stage],
        ["mkdir", "-p", stage],
        ["ditto", app, f"{stage}/{app_info.APP_NAME}.app"],
        ["ln", "-s", "/Applications", f"{stage}/Applications"],
        [
            *("hdiutil", "create", "-volname", f"{app_info.APP_NAME} {app_info.version()}"),
            *("-srcfolder", stage, "-ov", "-format", "UDZO", dmg),
        ],
    ]
    if sign_id != "-":
        commands.append(["codesign", "--force", "--timestamp", "--sign", sign_id, dmg])
    if notary is not None:
        commands += [
            ["xcrun", "notarytool", "submit", dmg, *notary, "--wait"],
            ["xcrun", "stapler", "staple", dmg],
            ["xcrun", "stapler", "validate", dmg],
        ]
    return commands


def _linux_commands(tarball: bool) -> list[Command]:
    commands = [_pyinstaller()]
    if tarball:
        name = app_info.tarball_name(machine=platform.machine() or "x86_64")
        commands.append(["tar", "-czf", f"dist/{name}", "-C", "dist", app_info.APP_NAME])
    return commands


def build_commands(target: str, env: Mapping[str, str], tarball: bool = False) -> list[Command]:
    """Every command that builds the app for ``target`` ("macos" or "linux"), in order.

    Raises:
        BuildError: the signing or notary variables contradict each other.
    """
    return _macos_commands(env) if target == "macos" else _linux_commands(tarball)


def executable(target: str) -> Path:
    """The built app's executable, relative to the repository."""
    if target == "macos":
        return Path("dist", f"{app_info.APP_NAME}.app", "Contents", "MacOS", app_info.APP_NAME)
    return Path("dist", app_info.APP_NAME, app_info.APP_NAME)


def self_test_commands(target: str, model: Path, video: Path | None) -> list[Command]:
    """The bundle's own checks: ``--self-test`` with ``model``, then the video check (Linux)."""
    commands = [[str(executable(target)), "--model", str(model), "--self-test"]]
    if target == "linux" and video is not None:
        check = Path("dist", app_info.APP_NAME, f"{app_info.APP_NAME}-bundle-check")
        commands.append([str(check), str(video)])
    return commands


def _shown(command: Command, env: Mapping[str, str]) -> str:
    secrets = {env[v] for v in SECRET_VARS if env.get(v)}
    return shlex.join("***" if part in secrets else part for part in command)


def _run(commands: Sequence[Command], env: Mapping[str, str], dry_run: bool) -> int:
    for command in commands:
        print(_shown(command, env), flush=True)
        if dry_run:
            continue
        try:
            code = subprocess.run(command, cwd=ROOT, env=dict(env), check=False).returncode
        except FileNotFoundError:
            print(f"build.py: error: {command[0]} is not installed", file=sys.stderr)
            return 1
        if code != 0:
            print(f"build.py: error: {command[0]} failed (exit {code})", file=sys.stderr)
            return 1
    return 0


def _fixture_model(root: Path) -> Path:
    """A tiny random-weight checkpoint in the layout of Liquid's MLX 8-bit repository."""
    from lfmdesk.core.testing import write_checkpoint, write_quantized

    hf = write_checkpoint(root / "lfm2.5-vl-tiny")
    return write_quantized(hf, root / "lfm2.5-vl-tiny-mlx-8bit", 8)


def _fixture_video(path: Path) -> Path | None:
    """A short MP4 written with the build machine's Qt; None where it cannot write one."""
    try:
        from PySide6.QtGui import QGuiApplication

        from lfmdesk.core.testing import moving_box_frames
        from lfmdesk.gui.live._video_writer import write_video
        from lfmdesk.gui.support._qtimage import pil_to_qimage
    except ImportError as exc:
        print(f"build.py: warning: no video check ({exc})", file=sys.stderr)
        return None
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    write_video(path, (pil_to_qimage(im) for im in moving_box_frames(60, 320, 240)), fps=30)
    return path


def _self_test(target: str, env: dict[str, str], dry_run: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="lfmdesk-selftest-") as tmp:
        base = Path(tmp)
        # The bundle must not read or write the builder's settings, data or model cache.
        env = {
            **env,
            "QT_QPA_PLATFORM": env.get("QT_QPA_PLATFORM", "offscreen"),
            "LFMDESK_CONFIG_DIR": str(base / "config"),
            "LFMDESK_DATA_DIR": str(base / "data"),
            "HF_HUB_CACHE": str(base / "hf-cache"),
        }
        os.environ["QT_QPA_PLATFORM"] = env["QT_QPA_PLATFORM"]
        video: Path | None
        if dry_run:
            model, video = base / "model", base / "clip.mp4"
        else:
            if not (ROOT / executable(target)).exists():
                raise BuildError(f"{executable(target)} does not exist; run build.py first")
            model = _fixture_model(base / "models")
            video = _fixture_video(base / "clip.mp4") if target == "linux" else None
        commands = self_test_commands(target, model, video)
        return _run(commands, env, dry_run)


def _sign(target: str, env: Mapping[str, str], app: str, dry_run: bool) -> int:
    if target != "macos":
        raise BuildError("only the macOS app is signed; add --platform macos to list the commands")
    path = Path(app).absolute()
    if not path.is_dir():
        raise BuildError(f"{app} does not exist; run build.py first")
    root = f"{ROOT}{os.sep}"
    commands = [
        [part.removeprefix(root) for part in command]  # paths in the repository, as given
        for command in signing.sign_commands(path, identity(env))
    ]
    return _run(commands, env, dry_run)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="build.py", description="Build lfmdesk as an app bundle.")
    actions = ("build", "self-test", "sign")
    parser.add_argument("action", nargs="?", choices=actions, default="build")
    parser.add_argument("--app", default=f"dist/{app_info.APP_NAME}.app", help="sign: the .app")
    parser.add_argument("--platform", choices=tuple(HOSTS.values()), help="default: this one")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    parser.add_argument("--tarball", action="store_true", help="Linux: also make a .tar.gz")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry; returns the exit code (2 for a usage or configuration error)."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    host = HOSTS.get(sys.platform)
    target = args.platform or host
    env = dict(os.environ)
    try:
        if target is None:
            raise BuildError(f"cannot build on {sys.platform}; pass --platform with --dry-run")
        if target != host and not args.dry_run:
            raise BuildError(f"the {target} app builds on {target} only; add --dry-run to list")
        if args.action == "self-test":
            return _self_test(target, env, args.dry_run)
        if args.action == "sign":
            return _sign(target, env, args.app, args.dry_run)
        return _run(build_commands(target, env, args.tarball), env, args.dry_run)
    except BuildError as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
