"""Training adapters with the real mlx-vlm trainer on the tiny fixture checkpoints."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lfmdesk.core import Engine, InputError, VisionSettings
from lfmdesk.core.testing import SQUARE_LABEL, squares_project
from lfmdesk.core.train._base import check_adapter
from lfmdesk.core.train._loop import (
    TrainEvent,
    TrainFinished,
    TrainStep,
    TrainStopped,
    plan_resume,
    plan_run,
    train_adapter,
)
from lfmdesk.core.train._run import TrainConfig
from lfmdesk.core.train._score import ValidationScore
from lfmdesk.core.train._store import (
    METADATA,
    AdapterInfo,
    BaseModel,
    adapter_folder,
    find_adapter,
    list_adapters,
    read_info,
    remove_adapter,
    write_info,
)

pytestmark = pytest.mark.slow


def run(config: TrainConfig, model: Path, *, stop_at: int = 0, resume: bool = False) -> list:
    stop = threading.Event()
    events: list[TrainEvent] = []
    plan = plan_resume(config.name) if resume else plan_run(config)
    for event in train_adapter(plan, model, cancel=stop):
        events.append(event)
        if isinstance(event, TrainStep) and event.step == stop_at:
            stop.set()
    return events


def config_for(project: Path, model: Path, name: str, **changes: object) -> TrainConfig:
    values: dict = dict(steps=4, rank=16, learning_rate=2e-3, evaluate=False)
    values.update(changes)
    return TrainConfig(project, (SQUARE_LABEL,), str(model), name, **values)


@pytest.fixture(scope="module")
def squares(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return squares_project(tmp_path_factory.mktemp("squares") / "project", 40)


@pytest.fixture(scope="module")
def short_adapter(
    tmp_path_factory: pytest.TempPathFactory, squares: Path, fixture_models: dict[str, Path]
) -> Iterator[Path]:
    """A 3-step adapter on the bf16 fixture, in the data folder every test of the session uses."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LFMDESK_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
        config = config_for(squares, fixture_models["bf16"], "short", steps=3)
        (finished,) = [
            e for e in run(config, fixture_models["bf16"]) if isinstance(e, TrainFinished)
        ]
        yield finished.folder


def test_training_lowers_the_loss_and_the_adapter_finds_held_out_squares(
    squares: Path, fixture_models: dict[str, Path]
) -> None:
    """The issue's loop: 80 steps, lr 2e-3, rank 16 on a project of coloured squares."""
    model = fixture_models["bf16"]
    config = config_for(squares, model, "loop", steps=80, evaluate=True)
    events = run(config, model)
    losses = [e.loss for e in events if isinstance(e, TrainStep)]
    assert len(losses) == 80
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 1.0
    (finished,) = [e for e in events if isinstance(e, TrainFinished)]
    info = finished.info
    base, adapter = info.base_score, info.adapter_score
    assert base is not None and adapter is not None
    assert adapter.images == base.images == info.validation_images >= 4
    assert adapter.label_hit_rate >= 0.9, [s.answer for s in adapter.per_image]
    assert base.label_hit_rate <= 0.1
    assert info.train_images + info.validation_images == 40
    # Evaluated on held-out pictures only: none of them was trained on.
    trained = (finished.folder / "training" / "train.jsonl").read_text().splitlines()
    held_out = {s.image for s in adapter.per_image}
    assert held_out.isdisjoint(json.loads(line)["image"] for line in trained)
    assert read_info(finished.folder) == info


def test_ctrl_c_saves_and_resume_continues_exactly(
    squares: Path, fixture_models: dict[str, Path]
) -> None:
    model = fixture_models["bf16"]
    whole = run(config_for(squares, model, "whole", steps=8), model)
    first = run(config_for(squares, model, "cut", steps=8), model, stop_at=3)
    stopped = first[-1]
    assert isinstance(stopped, TrainStopped) and stopped.step == 3
    assert not (stopped.folder / METADATA).exists()
    (entry,) = [e for e in list_adapters() if e.name == "cut"]
    assert (entry.info, entry.step, entry.steps) == (None, 3, 8)
    with pytest.raises(InputError, match="--resume"):
        find_adapter("cut")  # not usable yet, and it says how to finish it
    with pytest.raises(InputError, match="add --resume to continue it"):
        run(config_for(squares, model, "cut", steps=8), model)
    second = run(config_for(squares, model, "cut", steps=8), model, resume=True)
    assert isinstance(second[-1], TrainFinished)
    resumed = [(e.step, e.loss) for e in first + second if isinstance(e, TrainStep)]
    assert resumed == [(e.step, e.loss) for e in whole if isinstance(e, TrainStep)]
    import mlx.core as mx

    a = mx.load(str(adapter_folder("whole") / "adapters.safetensors"))
    b = mx.load(str(adapter_folder("cut") / "adapters.safetensors"))
    assert a.keys() == b.keys() and all(mx.array_equal(a[k], b[k]) for k in a)


def test_an_adapter_loads_on_its_own_base_and_is_refused_on_any_other(
    short_adapter: Path, fixture_models: dict[str, Path]
) -> None:
    folder, info = check_adapter("short", fixture_models["bf16"])
    assert folder == short_adapter and info.base.bits is None
    engine = Engine()
    assert engine.load(fixture_models["bf16"], adapter=folder).adapter == folder
    engine.unload()
    with pytest.raises(InputError, match=r"trained on the bf16 model .*this one is 8-bit"):
        check_adapter("short", fixture_models["8bit"])
    with pytest.raises(InputError, match="trained on another model"):
        check_adapter("short", fixture_models["hf"])
    with pytest.raises(InputError, match="no adapter named 'nope'"):
        check_adapter("nope", fixture_models["bf16"])


def test_adapter_metadata_round_trips(short_adapter: Path, tmp_path: Path) -> None:
    info = read_info(short_adapter)
    assert info.name == "short" and info.labels == (SQUARE_LABEL,) and info.steps == 3
    score = ValidationScore(5, 4, 5, 3, 2, 0, 1.5)
    changed = dataclasses.replace(
        info,
        vision=VisionSettings(max_image_tokens=64, do_image_splitting=False),
        base=BaseModel("a/b", "8bit", "/x", "f" * 64, 8),
        base_score=score,
        adapter_score=dataclasses.replace(score, label_hits=5),
    )
    write_info(tmp_path, changed)
    assert read_info(tmp_path) == changed
    data = json.loads((tmp_path / METADATA).read_text())
    assert data["schema_version"] == 1 and data["base"]["content_hash"] == "f" * 64
    assert AdapterInfo.from_dict({**data, "from_the_future": 1}) == changed
    with pytest.raises(InputError, match="not an lfmdesk adapter"):
        AdapterInfo.from_dict({"name": "x"})


def test_an_example_too_long_is_an_error_naming_the_picture_and_the_fix(
    squares: Path, fixture_models: dict[str, Path]
) -> None:
    model = fixture_models["bf16"]
    with pytest.raises(InputError) as caught:
        run(config_for(squares, model, "long", max_seq_length=64), model)
    message = str(caught.value)
    assert message.startswith("square-") and "more than --max-seq-length 64" in message
    assert "raise --max-seq-length to 256" in message and "--max-image-tokens" in message
    assert "\n" not in message
    assert not adapter_folder("long").exists()  # nothing written


def test_a_taken_name_is_refused_and_remove_frees_it(
    short_adapter: Path, squares: Path, fixture_models: dict[str, Path]
) -> None:
    model = fixture_models["bf16"]
    with pytest.raises(InputError, match="an adapter named 'short' exists"):
        run(config_for(squares, model, "short"), model)
    copy = adapter_folder("short-copy")
    shutil.copytree(short_adapter, copy)
    assert "short-copy" in [e.name for e in list_adapters()]
    assert remove_adapter("short-copy") == copy and not copy.exists()
    with pytest.raises(InputError, match="no adapter named"):
        remove_adapter("short-copy")
    with pytest.raises(InputError, match="not allowed"):
        remove_adapter("../data")


def test_the_engine_process_loads_an_adapter_and_refuses_a_mismatch(
    short_adapter: Path, fixture_models: dict[str, Path]
) -> None:
    from lfmdesk.core import EngineProcess, LoadModel, ModelFailed, ModelLoaded

    def load(proc: EngineProcess, spec: str) -> object:
        proc.send(LoadModel(spec, adapter="short"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for event in proc.wait_events(0.5):
                if isinstance(event, (ModelLoaded, ModelFailed)):
                    return event
        raise AssertionError("no answer from the engine process")

    with EngineProcess("real") as proc:  # the child inherits this test's data folder
        loaded = load(proc, str(fixture_models["bf16"]))
        assert isinstance(loaded, ModelLoaded) and loaded.info.adapter == short_adapter
        failed = load(proc, str(fixture_models["8bit"]))
        assert isinstance(failed, ModelFailed) and not failed.cancelled
        assert "trained on the bf16 model" in failed.message and "\n" not in failed.message


def test_the_training_process_trains_in_a_child_and_cancel_saves(
    squares: Path, fixture_models: dict[str, Path]
) -> None:
    from lfmdesk.core.train._process import TrainFailed, TrainingProcess, TrainRequest

    def until_end(proc: TrainingProcess, on_step=None) -> tuple[list, object]:
        seen: list = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            for event in proc.poll_events(0.5):
                if isinstance(event, (TrainFinished, TrainStopped, TrainFailed)):
                    return seen, event
                seen.append(event)
                if isinstance(event, TrainStep) and on_step is not None:
                    on_step(proc)
        raise AssertionError(f"the training process never ended; got {seen}")

    model = str(fixture_models["bf16"])
    request = TrainRequest(squares, (SQUARE_LABEL,), model, steps=50, name="child", rank=16)
    proc = TrainingProcess("real")
    proc.start(request)
    seen, end = until_end(proc, on_step=TrainingProcess.cancel)
    proc.stop()
    assert isinstance(end, TrainStopped) and 1 <= end.step < 50, end
    assert any(isinstance(e, TrainStep) for e in seen)
    assert [e.step for e in list_adapters() if e.name == "child"] == [end.step]

    failing = TrainingProcess("real")
    failing.start(TrainRequest(squares, ("nothing here",), model, name="child-2"))
    _seen, end = until_end(failing)
    failing.stop()
    assert isinstance(end, TrainFailed), end
    assert (
        "no box is labelled nothing here" in end.message and "(labels there: square)" in end.message
    )
    assert "\n" not in end.message and not adapter_folder("child-2").exists()
