"""The README's test command sets up a fresh machine, and CI runs exactly that command.

``scripts/test`` runs here against stand-ins for the system tools (uname, id, sudo,
dpkg-query, apt-get, python3) on PATH: what it would install, and in which order it sets up
the virtualenv and runs pytest, is read from their log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APT_PACKAGES = [
    *("libopenblas0-pthread", "xvfb", "xauth", "libxcb-cursor0", "libxcb-icccm4"),
    *("libxcb-keysyms1", "libxkbcommon-x11-0", "libegl1", "libgl1", "libpulse0"),
]

# --- README and CI -----------------------------------------------------------------------


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_quick_start_has_two_commands_and_ci_runs_the_test_one_verbatim() -> None:
    install_and_run, test = quick_start_commands()
    assert install_and_run.endswith(".venv/bin/lfmdesk")
    assert test == "scripts/test"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in ci  # the same command, on a line of its own
    assert not any("apt-get" in line for line in ci)  # the set-up is the test command's
    packaging = next(i for i, line in enumerate(ci) if "packaging/build.py" in line)
    assert ci.index(test) < packaging  # the bundle is built after the tests pass


def test_the_test_command_is_executable() -> None:
    assert os.access(ROOT / "scripts" / "test", os.X_OK)
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


# --- scripts/test against stand-in system tools ---------------------------------------------

STUBS = {
    # STUB_OS, STUB_UID, STUB_SUDO (yes/no), STUB_INSTALLED (package list) steer them.
    "uname": 'echo "${STUB_OS:-Linux}"',
    "id": 'echo "${STUB_UID:-1000}"',
    "sudo": (
        '[ "${STUB_SUDO:-no}" = yes ] || exit 1\n[ "$1" = -n ] && shift\n'
        'echo "sudo $*" >>"$STUB_LOG"\n"$@"'
    ),
    "dpkg-query": (
        'pkg="${@: -1}"\ncase " $STUB_INSTALLED " in *" $pkg "*) echo "install ok installed";;\n'
        '*) echo "unknown ok not-installed";; esac'
    ),
    "apt-get": (
        'echo "apt-get $*" >>"$STUB_LOG"\n'
        'case " $* " in *" python3-venv "*) touch "$STUB_STATE/venv-ok";; esac'
    ),
    "python3": (
        'echo "python3 $*" >>"$STUB_LOG"\n'
        '[ "$1 $2" = "-m venv" ] || exit 0\n[ -e "$STUB_STATE/venv-ok" ] || exit 1\n'
        'mkdir -p "$3/bin"\n'
        'printf \'#!/bin/bash\\necho "venv-python $*" >>"$STUB_LOG"\\n\' >"$3/bin/python"\n'
        'chmod +x "$3/bin/python"'
    ),
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A copy of the repository's scripts/test and pyproject.toml, and the stand-in tools."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "test", repo / "scripts" / "test")
    shutil.copy2(ROOT / "pyproject.toml", repo / "pyproject.toml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n", encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "state").mkdir()
    return tmp_path


def run_test_script(
    sandbox: Path, *args: str, venv: bool = True, **stub_env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    if venv:
        (sandbox / "state" / "venv-ok").touch()
    log = sandbox / "log"
    log.unlink(missing_ok=True)
    env = {
        "PATH": f"{sandbox / 'bin'}:/usr/bin:/bin",
        "HOME": str(sandbox),
        "STUB_LOG": str(log),
        "STUB_STATE": str(sandbox / "state"),
        **stub_env,
    }
    result = subprocess.run(
        ["bash", str(sandbox / "repo" / "scripts" / "test"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return result, lines


def test_without_root_or_sudo_it_prints_the_one_apt_line_and_stops(sandbox: Path) -> None:
    result, log = run_test_script(sandbox, STUB_INSTALLED="xvfb xauth")
    assert result.returncode == 1
    missing = [p for p in APT_PACKAGES if p not in ("xvfb", "xauth")]
    assert result.stderr.splitlines()[-1] == "sudo apt-get install -y " + " ".join(missing)
    assert not any(line.startswith(("apt-get", "venv-python")) for line in log)
    assert not (sandbox / "repo" / ".venv").exists()


def test_a_fresh_debian_gets_libraries_venv_extras_then_pytest(sandbox: Path) -> None:
    # Fresh Debian/Ubuntu as root: no libraries, and python3 makes no venv without python3-venv.
    result, log = run_test_script(sandbox, "-x", "tests/core", venv=False, STUB_UID="0")
    assert result.returncode == 0, result.stderr
    install = next(line for line in log if line.startswith("apt-get") and " install " in line)
    assert install.split()[-len(APT_PACKAGES) - 1 :] == [*APT_PACKAGES, "python3-venv"]
    steps = [line for line in log if not line.startswith("apt-get") and "/venv" not in line]
    assert steps == [
        "python3 -m venv .venv",
        "venv-python -m pip install -q -e .[test]",
        "venv-python -m pytest -x tests/core",
    ]


def test_passwordless_sudo_installs_what_is_missing(sandbox: Path) -> None:
    result, log = run_test_script(
        sandbox, STUB_SUDO="yes", STUB_INSTALLED=" ".join(APT_PACKAGES[1:])
    )
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("sudo env DEBIAN_FRONTEND") for line in log)
    assert any(
        line.startswith("apt-get") and line.endswith(" libopenblas0-pthread") for line in log
    )


def test_nothing_is_installed_when_it_is_all_there_and_extras_only_once(sandbox: Path) -> None:
    installed = {"STUB_INSTALLED": " ".join(APT_PACKAGES)}
    result, log = run_test_script(sandbox, **installed)
    assert result.returncode == 0, result.stderr
    assert not any(line.startswith(("apt-get", "sudo")) for line in log)
    assert "venv-python -m pip install -q -e .[test]" in log
    _, log = run_test_script(sandbox, **installed)
    assert log == ["venv-python -m pytest"]  # set up already: straight to the tests


def test_macos_needs_no_apt(sandbox: Path) -> None:
    result, log = run_test_script(sandbox, STUB_OS="Darwin")
    assert result.returncode == 0, result.stderr
    assert not any(line.startswith(("apt-get", "sudo")) for line in log)
    assert log[-1] == "venv-python -m pytest"
