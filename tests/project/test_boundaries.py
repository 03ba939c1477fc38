"""The core and the CLI stay Qt-free: the window is a thin skin, never a dependency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_core_and_cli_import_without_qt() -> None:
    code = (
        "import sys, lfmdesk.core, lfmdesk.cli, lfmdesk.cli._commands, lfmdesk.cli._models;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt6')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_qt_import_statement_in_core_or_cli() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("lfmdesk/core", "lfmdesk/cli")
        for p in (ROOT / folder).rglob("*.py")
        if any(
            line.lstrip().startswith(("import PySide6", "from PySide6", "import shiboken6"))
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []


def test_importing_core_does_not_import_mlx() -> None:
    # Importing the core must stay cheap (CLI start-up, `lfmdesk tiles`), and MLX must be
    # imported only after the BLAS preload.
    code = "import sys, lfmdesk.core; sys.exit(1 if 'mlx.core' in sys.modules else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_import_linter_contract_holds() -> None:
    # The script beside this interpreter: the venv need not be activated (README's command).
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint_imports)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
