"""``python -m lfmdesk.bench --throughput`` runs end to end and prints its three tables.

A smoke run on the tiny fixture (timings here mean nothing; the README quotes full-size runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lfmdesk.bench import main


def test_the_throughput_tables_print_in_one_run(
    fixture_models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LFMDESK_BENCH_DIR", str(tmp_path / "bench"))
    model = str(fixture_models["8bit"])
    assert main(["--model", model, "--throughput", "--quick", "--answer-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ")
    stages, batches, startup = out.split("\n\n")[1:4]
    assert stages.splitlines()[1].startswith("lfmdesk engine") and " fast " in stages
    assert stages.splitlines()[2].startswith("raw mlx-vlm") and " stock " in stages
    rows = batches.splitlines()
    assert [r.split("  ")[0] for r in rows[1:5]] == [
        "one at a time, mlx-vlm tower",
        "one at a time",
        "batch 1",
        "batch 4",
    ]
    assert all(" 4/4 " in r for r in rows[1:5])  # greedy answers identical in every row
    assert "window visible" in startup
    window, ask = startup.splitlines()[1:3]
    assert window.startswith("lfmdesk (window)") and "-" not in window.split()[-3:-1]
    assert ask.startswith("lfmdesk ask") and ask.split()[-1].endswith("s")
