"""The app bundle's inputs: icon, Info.plist, entitlements, the spec and build.py's commands.

Nothing here runs PyInstaller (CI builds the real bundle and runs its --self-test); the macOS
steps are checked through ``build.py --dry-run``, which prints the commands it would run.
"""

from __future__ import annotations

import importlib.util
import plistlib
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

import lfmdesk

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
NOTARY_VARS = (
    "LFMDESK_CODESIGN_IDENTITY",
    "LFMDESK_NOTARY_PROFILE",
    "APPLE_ID",
    "APPLE_TEAM_ID",
    "APPLE_APP_PASSWORD",
)
DEV_ID = "Developer ID Application: Example (TEAM123)"


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"_lfmdesk_pkg_{name}", PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app_info = _load("app_info")


def _build(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if k not in NOTARY_VARS}
    return subprocess.run(
        [sys.executable, str(PACKAGING / "build.py"), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=ROOT,
        timeout=60,
    )


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


# --- icon -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def icons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("icon")
    subprocess.run(
        [sys.executable, str(PACKAGING / "make_icon.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def test_icns_holds_every_size_from_16_to_512_at_2x(icons: Path) -> None:
    with Image.open(icons / "lfmdesk.icns") as im:
        assert im.format == "ICNS"
        sizes = set(im.info["sizes"])
    for points in (16, 32, 128, 256, 512):
        assert (points, points, 2) in sizes
    for points, scale in [(16, 2), (128, 1), (512, 2)]:
        with Image.open(icons / "lfmdesk.icns") as im:
            im.size = (points, points)
            im.load(scale=scale)
            px = points * scale
            assert im.size == (px, px)
            assert im.mode == "RGBA"
            assert im.getpixel((0, 0))[3] == 0  # outside the rounded square
            assert im.getpixel((px // 2, px // 4))[3] == 255


def test_png_is_1024_pixels_with_a_transparent_margin(icons: Path) -> None:
    with Image.open(icons / "lfmdesk.png") as im:
        assert (im.format, im.size, im.mode) == ("PNG", (1024, 1024), "RGBA")
        assert im.getpixel((50, 512))[3] == 0  # Apple's grid: 100 px margin
        assert im.getpixel((512, 150))[3] == 255


def test_make_icon_rejects_a_missing_svg(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, str(PACKAGING / "make_icon.py")),
            *("--svg", str(tmp_path / "no.svg"), "--out", str(tmp_path / "out")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_packaged_icon_is_the_one_in_resources() -> None:
    source = (ROOT / "resources" / "lfmdesk.svg").read_bytes()
    assert (ROOT / "lfmdesk" / "gui" / "lfmdesk.svg").read_bytes() == source


def test_app_icon_renders_at_16_pixels(qapp: Any) -> None:
    from lfmdesk.gui._icon import app_icon, icon_path

    assert icon_path() is not None
    image = app_icon().pixmap(16, 16).toImage()
    assert (image.width(), image.height()) == (16, 16)
    assert image.pixelColor(8, 8).alpha() == 255


# --- Info.plist and entitlements ---------------------------------------------------------


def test_info_plist_explains_camera_and_screen_and_carries_the_version() -> None:
    plist = app_info.info_plist()
    assert plist["CFBundleIdentifier"] == "io.github.lfmdesk"
    assert plist["CFBundleShortVersionString"] == lfmdesk.__version__
    assert plist["CFBundleVersion"] == lfmdesk.__version__
    assert "camera" in plist["NSCameraUsageDescription"].lower()
    assert "screen" in plist["NSScreenCaptureUsageDescription"].lower()
    assert plist["LSMinimumSystemVersion"] == "13.5"
    assert plist["LSArchitecturePriority"] == ["arm64"]
    assert plist["LSRequiresNativeExecution"] is True
    plistlib.dumps(plist)  # every value is plist-serializable


def test_info_plist_offers_to_open_images_and_videos_without_taking_them_over() -> None:
    # "Open With ▸ lfmdesk" and a drop on the Dock icon need declared document types; the app
    # turns the QFileOpenEvent that follows into an opened image (tests/gui/test_gui_window.py).
    types = app_info.info_plist()["CFBundleDocumentTypes"]
    content = {t for entry in types for t in entry["LSItemContentTypes"]}
    assert {"public.image", "public.movie"} <= content
    assert all(entry["CFBundleTypeRole"] == "Viewer" for entry in types)
    assert all(entry["LSHandlerRank"] == "Alternate" for entry in types)  # never the default


def test_entitlements_allow_what_python_mlx_and_the_camera_need() -> None:
    with (PACKAGING / "entitlements.plist").open("rb") as f:
        entitlements = plistlib.load(f)
    assert entitlements == {
        "com.apple.security.cs.allow-jit": True,
        "com.apple.security.cs.allow-unsigned-executable-memory": True,
        "com.apple.security.cs.disable-library-validation": True,
        "com.apple.security.device.camera": True,
    }


# --- the spec, run with stand-ins for PyInstaller's build targets ------------------------


class _Target:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.pure = self.scripts = self.binaries = self.datas = []
        type(self).made.append(self)

    made: ClassVar[list[_Target]] = []


def _run_spec(monkeypatch: pytest.MonkeyPatch, platform: str) -> dict[str, list[_Target]]:
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_all = lambda _pkg: ([], [], [])  # type: ignore[attr-defined]
    hooks.collect_data_files = lambda _pkg: []  # type: ignore[attr-defined]
    hooks.collect_submodules = lambda pkg: [pkg]  # type: ignore[attr-defined]
    hooks.copy_metadata = lambda *_a, **_k: []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.delenv("LFMDESK_CODESIGN_IDENTITY", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    names = ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")
    made: dict[str, list[_Target]] = {}
    scope: dict[str, Any] = {"SPECPATH": str(PACKAGING)}
    for name in names:
        made[name] = []
        scope[name] = type(name, (_Target,), {"made": made[name]})
    source = (PACKAGING / "lfmdesk.spec").read_text(encoding="utf-8")
    exec(compile(source, "lfmdesk.spec", "exec"), scope)
    return made


def test_spec_on_macos_bundles_an_arm64_app_with_the_plist_and_icon(monkeypatch) -> None:
    made = _run_spec(monkeypatch, "darwin")
    (bundle,) = made["BUNDLE"]
    assert bundle.kwargs["name"] == "lfmdesk.app"
    assert bundle.kwargs["info_plist"] == app_info.info_plist()
    assert bundle.kwargs["bundle_identifier"] == "io.github.lfmdesk"
    assert bundle.kwargs["icon"].endswith("lfmdesk.icns")
    (exe,) = made["EXE"]
    assert exe.kwargs["target_arch"] == "arm64"
    assert exe.kwargs["codesign_identity"] == "-"
    assert Path(exe.kwargs["entitlements_file"]).is_file()
    (analysis,) = made["Analysis"]
    assert "torch" in analysis.kwargs["excludes"]
    assert "PySide6.QtMultimedia" in analysis.kwargs["hiddenimports"]


def test_spec_on_linux_makes_one_folder_with_the_bundle_check(monkeypatch) -> None:
    made = _run_spec(monkeypatch, "linux")
    assert made["BUNDLE"] == []
    assert [e.kwargs["name"] for e in made["EXE"]] == ["lfmdesk", "lfmdesk-bundle-check"]
    (collect,) = made["COLLECT"]
    assert collect.kwargs["name"] == "lfmdesk"
    datas = made["Analysis"][0].kwargs["datas"]
    assert (str(ROOT / "resources" / "lfmdesk.svg"), "resources") in datas


# --- build.py ----------------------------------------------------------------------------


def test_macos_dry_run_signs_inside_out_and_makes_a_dmg_without_notarizing() -> None:
    lines = _lines(_build("--dry-run", "--platform", "macos"))
    build = next(i for i, line in enumerate(lines) if "packaging/lfmdesk.spec" in line)
    sign = next(i for i, line in enumerate(lines) if "packaging/build.py sign" in line)
    verify = next(i for i, line in enumerate(lines) if line.startswith("codesign --verify"))
    assert build < sign < verify
    assert lines[sign].endswith("packaging/build.py sign --app dist/lfmdesk.app")
    assert not any("--deep" in line for line in lines if line.startswith("codesign --force"))
    assert "ln -s /Applications build/dmg/Applications" in lines
    dmg = next(line for line in lines if line.startswith("hdiutil create"))
    assert dmg.endswith(f"dist/lfmdesk-{lfmdesk.__version__}-arm64.dmg")
    assert not any("notarytool" in line or "stapler" in line for line in lines)


def test_macos_dry_run_notarizes_and_staples_with_a_keychain_profile() -> None:
    lines = _lines(
        _build(
            "--dry-run",
            "--platform=macos",
            LFMDESK_CODESIGN_IDENTITY=DEV_ID,
            LFMDESK_NOTARY_PROFILE="lfmdesk-notary",
        )
    )
    dmg = f"dist/lfmdesk-{lfmdesk.__version__}-arm64.dmg"
    submit = f"xcrun notarytool submit {dmg} --keychain-profile lfmdesk-notary --wait"
    assert submit in lines
    assert f"xcrun stapler staple {dmg}" in lines
    assert lines.index(submit) < lines.index(f"xcrun stapler staple {dmg}")
    assert f"codesign --force --timestamp --sign '{DEV_ID}' {dmg}" in lines


def test_macos_dry_run_with_apple_id_hides_the_password() -> None:
    result = _build(
        "--dry-run",
        "--platform",
        "macos",
        LFMDESK_CODESIGN_IDENTITY=DEV_ID,
        APPLE_ID="me@example.com",
        APPLE_TEAM_ID="TEAM123",
        APPLE_APP_PASSWORD="abcd-efgh-ijkl-mnop",
    )
    submit = next(line for line in _lines(result) if "notarytool submit" in line)
    assert "--apple-id me@example.com --team-id TEAM123 --password '***'" in submit
    assert "abcd-efgh" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"LFMDESK_NOTARY_PROFILE": "p"}, "LFMDESK_CODESIGN_IDENTITY"),
        ({"LFMDESK_CODESIGN_IDENTITY": DEV_ID, "APPLE_ID": "me@example.com"}, "APPLE_TEAM_ID"),
    ],
)
def test_contradictory_signing_variables_stop_with_one_line(env: dict[str, str], words) -> None:
    result = _build("--dry-run", "--platform", "macos", **env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert words in result.stderr


def test_unknown_platform_is_a_one_line_error() -> None:
    result = _build("--dry-run", "--platform", "windows")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "windows" in line and "macos" in line


@pytest.mark.skipif(sys.platform != "linux", reason="the cross-platform refusal, seen from Linux")
def test_the_mac_app_is_not_built_on_linux_for_real() -> None:
    result = _build("--platform", "macos")
    assert result.returncode == 2
    assert "--dry-run" in result.stderr
    assert result.stdout == ""


# A PyInstaller-shaped .app: the bundled Python, dylibs, extensions, a Qt framework with a
# helper inside, data files, and Resources linked into Frameworks as PyInstaller does.
MACH_O = bytes.fromhex("cffaedfe") + bytes(60)  # a 64-bit little-endian (arm64) header
BUNDLE_FILES = {
    "Contents/MacOS/lfmdesk": MACH_O,
    "Contents/Info.plist": b"<plist/>",
    "Contents/Frameworks/Python": MACH_O,
    "Contents/Frameworks/libssl.3.dylib": MACH_O,
    "Contents/Frameworks/mlx/core.cpython-311-darwin.so": MACH_O,
    "Contents/Frameworks/mlx/lib/libmlx.dylib": MACH_O,
    "Contents/Frameworks/mlx/lib/mlx.metallib": b"MTLB" + bytes(60),
    "Contents/Frameworks/PySide6/Qt/lib/QtCore.framework/Versions/A/QtCore": MACH_O,
    "Contents/Frameworks/PySide6/Qt/lib/QtCore.framework/Versions/A/Helpers/qt_helper": MACH_O,
    "Contents/Frameworks/PySide6/Qt/lib/QtCore.framework/Versions/A/Resources/Info.plist": b"x",
    "Contents/Frameworks/PySide6/Qt/plugins/platforms/libqcocoa.dylib": MACH_O,
    "Contents/Frameworks/lfmdesk/gui/lfmdesk.svg": b"<svg/>",
    "Contents/Resources/lfmdesk.icns": b"icns",
}
BUNDLE_LINKS = {
    "Contents/Frameworks/PySide6/Qt/lib/QtCore.framework/Versions/Current": "A",
    "Contents/Frameworks/PySide6/Qt/lib/QtCore.framework/QtCore": "Versions/Current/QtCore",
    "Contents/Resources/mlx": "../Frameworks/mlx",
    "Contents/Resources/libssl.3.dylib": "../Frameworks/libssl.3.dylib",
}


@pytest.fixture
def fake_app(tmp_path: Path) -> Path:
    app = tmp_path / "dist" / "lfmdesk.app"
    for name, data in BUNDLE_FILES.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_bytes(data)
    for name, target in BUNDLE_LINKS.items():
        (app / name).symlink_to(target)
    return app


def _signed(line: str) -> str:
    return line.rsplit(" ", 1)[-1]


def test_sign_signs_nested_code_first_and_entitles_only_the_app(fake_app: Path) -> None:
    lines = _lines(_build("sign", "--dry-run", "--platform", "macos", "--app", str(fake_app)))
    assert all(line.startswith("codesign --force --options runtime ") for line in lines)
    assert not any("--deep" in line for line in lines)
    signed = [Path(_signed(line)).relative_to(fake_app).as_posix() for line in lines]
    # Every nested Mach-O file once (links and data never; a bundle's own binary is signed
    # with its bundle), deepest first; then the framework, after everything in it; the app last.
    assert sorted(signed[:6]) == [
        "Contents/Frameworks/PySide6/Qt/lib/QtCore.framework/Versions/A/Helpers/qt_helper",
        "Contents/Frameworks/PySide6/Qt/plugins/platforms/libqcocoa.dylib",
        "Contents/Frameworks/Python",
        "Contents/Frameworks/libssl.3.dylib",
        "Contents/Frameworks/mlx/core.cpython-311-darwin.so",
        "Contents/Frameworks/mlx/lib/libmlx.dylib",
    ]
    assert signed[0].endswith("Helpers/qt_helper")  # the deepest
    assert signed[6:] == ["Contents/Frameworks/PySide6/Qt/lib/QtCore.framework", "."]
    # The hardened-runtime exceptions go on the app (its main executable) and nowhere else.
    entitled = [line for line in lines if "--entitlements packaging/entitlements.plist" in line]
    assert entitled == [lines[-1]]
    assert lines[-1].endswith(f"--sign - {fake_app}")
    assert not any("--timestamp" in line for line in lines)  # ad hoc: no timestamp


def test_sign_with_a_developer_id_timestamps_every_signature(fake_app: Path) -> None:
    args = ("sign", "--dry-run", "--platform", "macos", "--app", str(fake_app))
    lines = _lines(_build(*args, LFMDESK_CODESIGN_IDENTITY=DEV_ID))
    assert len(lines) == 8
    assert all(f"--timestamp --sign '{DEV_ID}' " in line for line in lines)


def test_sign_without_a_built_app_is_a_one_line_error(tmp_path: Path) -> None:
    result = _build("sign", "--dry-run", "--platform", "macos", "--app", str(tmp_path / "x.app"))
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "run build.py first" in line


def test_linux_dry_run_builds_one_folder_and_optionally_a_tarball() -> None:
    lines = _lines(_build("--dry-run", "--platform", "linux", "--tarball"))
    assert len(lines) == 2
    assert "packaging/lfmdesk.spec" in lines[0]
    assert lines[1].startswith("tar -czf dist/lfmdesk-") and lines[1].endswith("-C dist lfmdesk")
    assert not any("codesign" in line or "hdiutil" in line for line in lines)


def test_self_test_dry_run_starts_the_bundle_with_self_test() -> None:
    lines = _lines(_build("self-test", "--dry-run", "--platform", "macos"))
    assert lines[0].startswith("dist/lfmdesk.app/Contents/MacOS/lfmdesk --model ")
    assert lines[0].endswith(" --self-test")


def test_readme_gatekeeper_advice_works_since_macos_15() -> None:
    # macOS 15 dropped Control-click ▸ Open for unnotarized apps: Open Anyway is the way.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = readme.split("## Install on a Mac", 1)[1].split("\n## ", 1)[0]
    assert "Privacy & Security" in install and "**Open Anyway**" in install
    for advice in (install, readme.split("## Troubleshooting", 1)[1]):
        assert "Control-click the app ▸ **Open**" not in advice
        assert "build: Control-click ▸ Open," not in advice
