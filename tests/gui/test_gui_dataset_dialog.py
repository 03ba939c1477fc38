"""The export dialog offers, visibly, what ``--overwrite`` does on the command line."""

from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("PySide6")

from lfmdesk.core import Project
from lfmdesk.gui.annotate._dataset_dialog import DatasetDialog


def _shown(widget) -> bool:
    return widget.isVisible() and widget.width() > 0 and widget.height() > 0


def test_export_into_a_folder_of_other_files_asks_for_the_visible_choice(qtbot, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    Image.new("RGB", (40, 30), "red").save(root / "a.png")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.pdf").write_bytes(b"%PDF")
    dialog = DatasetDialog("export", Project(root), "a.png")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert _shown(dialog.overwrite) and not dialog.overwrite.isChecked()
    assert "Replace files" in dialog.overwrite.text()

    dialog.path_edit.setText(str(out))
    dialog.run()
    qtbot.waitUntil(lambda: "not an lfmdesk export" in dialog.message.text(), timeout=5_000)
    assert _shown(dialog.message) and "tick" in dialog.message.text()
    assert sorted(p.name for p in out.iterdir()) == ["thesis.pdf"]  # nothing written

    dialog.overwrite.setChecked(True)
    with qtbot.waitSignal(dialog.finished_work, timeout=10_000) as done:
        dialog.run()
    assert done.args[0].images == 1 and (out / "annotations.json").is_file()
    assert (out / "thesis.pdf").read_bytes() == b"%PDF"


def test_export_report_names_a_skipped_image(qtbot, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    Image.new("RGB", (40, 30), "red").save(root / "a.png")
    (root / "broken.png").write_bytes(b"not an image")
    dialog = DatasetDialog("export", Project(root), None)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.path_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.finished_work, timeout=10_000):
        dialog.run()
    text = dialog.message.text()
    assert text.startswith("Exported 1 images") and "skipped 1" in text and "broken.png" in text
    assert _shown(dialog.message)


def test_import_report_names_what_was_kept_and_left_out():
    from lfmdesk.core import ImportReport
    from lfmdesk.gui.annotate._dataset_dialog import report_text

    report = ImportReport(2, 3, 1, ("car",), kept=("a.png",), problems=(("x.png", "outside"),))
    text = report_text(report)
    assert "kept your edited boxes of 1 images" in text and "x.png: outside" in text
