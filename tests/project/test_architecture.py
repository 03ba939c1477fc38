"""docs/architecture.md stays true: the rooms it names exist, and every room is named."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _subpackages(package: str) -> set[str]:
    base = ROOT / package.replace(".", "/")
    return {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in base.rglob("__init__.py")
        if p.parent != base and "__pycache__" not in p.parts
    }


def test_every_core_subpackage_is_described_and_every_described_one_exists() -> None:
    named = set(re.findall(r"\*\*`(lfmdesk\.core\.[a-z_.]+)`\*\*", DOC))
    assert named, "the doc names no core subpackage"
    actual = _subpackages("lfmdesk.core") - {
        "lfmdesk.core.testing",
        "lfmdesk.core.datasets.formats",
    }
    assert named == actual


def test_every_gui_subpackage_is_described() -> None:
    named = set(re.findall(r"`gui/([a-z_]+)/`", DOC))
    actual = {name.rsplit(".", 1)[1] for name in _subpackages("lfmdesk.gui")}
    assert named == actual


def test_every_file_in_the_request_walkthrough_exists() -> None:
    walkthrough = DOC.split("## From a dropped image")[1]
    paths = set(re.findall(r"`((?:gui|core)/[a-z_/]+\.py)`", walkthrough))
    assert len(paths) >= 10
    missing = [p for p in sorted(paths) if not (ROOT / "lfmdesk" / p).is_file()]
    assert missing == []


def test_every_subpackage_says_what_it_owns() -> None:
    for package in ("lfmdesk.core", "lfmdesk.gui"):
        for name in _subpackages(package):
            init = ROOT / name.replace(".", "/") / "__init__.py"
            docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            assert docstring and len(docstring) > 40, f"{name} has no docstring saying what it owns"


def test_no_folder_holds_more_than_a_dozen_modules() -> None:
    for folder in (ROOT / "lfmdesk").rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__":
            modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            assert len(modules) <= 12, f"{folder.relative_to(ROOT)} has {len(modules)} modules"
