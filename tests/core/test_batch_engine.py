"""Continuous batching on the real mlx-vlm: batched answers are the answers one at a time."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from lfmdesk.core import (
    ChatRequest,
    Engine,
    EngineError,
    GenerationStats,
    InputError,
    LoadedImage,
    Message,
    Project,
    SamplingSettings,
    TextDelta,
    VisionSettings,
    load_image,
    parse_detections,
)
from lfmdesk.core.datasets._batch import (
    BatchFinished,
    Detector,
    ImageAnnotated,
    ImageFailed,
    ImageSkipped,
    annotate_project,
    detection_request,
)
from lfmdesk.core.datasets._detect_many import engine_detector
from lfmdesk.core.engine._batch import BatchEngine, BatchItem, RequestFailed
from lfmdesk.core.testing import noise_image

GREEDY = SamplingSettings(temperature=0.0, max_tokens=16, repetition_penalty=1.0)


def make_image(w: int, h: int, seed: int) -> LoadedImage:
    return load_image(noise_image(w, h, seed))


Answer = tuple[str, GenerationStats]


def single(engine: Engine, request: ChatRequest) -> Answer:
    text, stats = "", None
    for event in engine.stream_chat(request):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, GenerationStats):
            stats = event
    assert stats is not None
    return text, stats


def batched(
    batch: BatchEngine, requests: list[ChatRequest]
) -> tuple[dict[int, Answer], dict[int, str]]:
    texts: dict[int, str] = {}
    answers: dict[int, Answer] = {}
    failures: dict[int, str] = {}
    for key, event in batch.run(enumerate(requests)):
        assert key not in answers and key not in failures  # nothing after the last event
        if isinstance(event, TextDelta):
            texts[key] = texts.get(key, "") + event.text
        elif isinstance(event, GenerationStats):
            answers[key] = (texts.get(key, ""), event)
        elif isinstance(event, RequestFailed):
            failures[key] = event.message
    return answers, failures


def requests_of_every_kind() -> list[ChatRequest]:
    """Images of different sizes (1 to 7 views), a text-only turn, a longer conversation,
    a repetition penalty and different answer lengths: rows of different prompt lengths
    join and leave the batch at different steps."""
    sizes = [(96, 80), (512, 512), (1200, 800), (64, 200), (300, 300), (640, 480)]
    reqs = [
        ChatRequest.single(f"Question {i}: what is here?", [make_image(w, h, i)], sampling=GREEDY)
        for i, (w, h) in enumerate(sizes)
    ]
    reqs.append(ChatRequest.single("A text-only question.", sampling=GREEDY))
    reqs.append(
        ChatRequest(
            (
                Message("system", "Be brief."),
                Message("user", "Look.", (make_image(128, 96, 9),)),
                Message("assistant", "A picture."),
                Message("user", "Of what?"),
            ),
            sampling=SamplingSettings(temperature=0.0, max_tokens=9, repetition_penalty=1.3),
        )
    )
    reqs.append(
        ChatRequest.single(
            "Short one.",
            [make_image(200, 100, 11)],
            sampling=SamplingSettings(temperature=0.0, max_tokens=3, repetition_penalty=1.0),
        )
    )
    return reqs


@pytest.mark.parametrize("max_batch", [2, 4, 8])
def test_greedy_answers_in_a_batch_equal_the_answers_one_at_a_time(
    engine: Engine, max_batch: int
) -> None:
    requests = requests_of_every_kind()
    alone = [single(engine, r) for r in requests]
    answers, failures = batched(BatchEngine(engine, max_batch=max_batch), requests)
    assert failures == {}
    for i, (text, stats) in enumerate(alone):
        got_text, got = answers[i]
        assert (got_text, got.token_ids, got.finish_reason) == (
            text,
            stats.token_ids,
            stats.finish_reason,
        ), f"request {i}"
        # The same prompt: every token, the image's tokens, the vision cache.
        assert (got.prompt_tokens, got.image_tokens, got.images) == (
            stats.prompt_tokens,
            stats.image_tokens,
            stats.images,
        )
        assert got.vision_cache_hits == got.images  # encoded by the single runs above


def test_constrained_detect_answers_in_a_batch_equal_them_one_at_a_time(engine: Engine) -> None:
    # Detect is constrained by default: each row keeps its own grammar and guard.
    sampling = SamplingSettings(temperature=0.0, max_tokens=48, constrained=True)
    requests = [
        detection_request(make_image(w, h, 40 + i), ("car", "person"), sampling)
        for i, (w, h) in enumerate([(96, 64), (300, 200), (64, 96), (512, 512)])
    ]
    assert all(r.constraint is not None for r in requests)
    alone = [single(engine, r) for r in requests]
    answers, failures = batched(BatchEngine(engine, max_batch=4), requests)
    assert failures == {}
    for i, (text, stats) in enumerate(alone):
        assert answers[i][0] == text and answers[i][1].token_ids == stats.token_ids
        image = requests[i].images[0]
        found = parse_detections(answers[i][0], image.width, image.height)
        assert not found.dropped and not found.truncated
        assert {d.label for d in found.detections} <= {"car", "person"}


def test_a_repeated_image_is_encoded_once(engine: Engine) -> None:
    image = make_image(333, 222, 42)
    requests = [
        ChatRequest.single(q, [image], sampling=GREEDY) for q in ("What?", "Where?", "Why?")
    ]
    answers, _ = batched(BatchEngine(engine, max_batch=3), requests)
    hits = sorted(answers[i][1].vision_cache_hits for i in range(3))
    assert hits == [0, 1, 1]  # the first row encodes it, the others reuse its features
    assert answers[0][1].vision_seconds > 0 and answers[2][1].vision_seconds == 0


def test_cancel_ends_one_answer_and_the_others_are_unchanged(engine: Engine) -> None:
    requests = requests_of_every_kind()[:4]
    alone = [single(engine, r) for r in requests]
    batch = BatchEngine(engine, max_batch=4)
    stops = [threading.Event() for _ in requests]
    tickets = [batch.submit(r, cancel=s) for r, s in zip(requests, stops, strict=True)]
    stops[3].set()  # cancelled before it starts
    events: dict[int, list[BatchItem]] = {t: [] for t in tickets}
    steps = 0
    while batch.busy:
        for ticket, event in batch.step():
            events[ticket].append(event)
        steps += 1
        if steps == 6:
            stops[1].set()  # Cancel pressed while this answer was being written
    last = {t: events[t][-1] for t in tickets}
    stats = {t: e for t, e in last.items() if isinstance(e, GenerationStats)}
    assert len(stats) == len(tickets)  # every request ends with its stats
    reasons = [stats[t].finish_reason for t in tickets]
    assert reasons[1] == reasons[3] == "cancelled"
    assert stats[tickets[3]].decode_tokens == 0
    assert 0 < stats[tickets[1]].decode_tokens < GREEDY.max_tokens
    for i in (0, 2):
        assert stats[tickets[i]].token_ids == alone[i][1].token_ids


def test_a_request_that_cannot_run_fails_alone(engine: Engine) -> None:
    bad_vision = VisionSettings()
    object.__setattr__(bad_vision, "min_tiles", 1)  # a 1x1 grid mlx-vlm miscounts
    bad = ChatRequest.single("?", [make_image(724, 723, 5)], sampling=GREEDY, vision=bad_vision)
    good = requests_of_every_kind()[0]
    answers, failures = batched(BatchEngine(engine, max_batch=2), [bad, good])
    assert list(failures) == [0] and "min_tiles" in failures[0] and "\n" not in failures[0]
    assert answers[1][1].token_ids == single(engine, good)[1].token_ids


def test_sampled_rows_keep_their_own_settings(engine: Engine) -> None:
    """A sampled row beside greedy rows: the greedy rows are untouched, the sampled one
    draws with its own temperature (min_p=1 keeps only the top token: its greedy answer)."""
    greedy = requests_of_every_kind()[:2]
    pinned = ChatRequest.single(
        "Question 0: what is here?",
        greedy[0].images,
        sampling=SamplingSettings(
            temperature=0.9, min_p=1.0, max_tokens=16, repetition_penalty=1.0
        ),
    )
    free = ChatRequest.single(
        "Tell me anything.",
        sampling=SamplingSettings(
            temperature=1.5, min_p=0.0, max_tokens=16, repetition_penalty=1.0
        ),
    )
    answers, failures = batched(BatchEngine(engine, max_batch=4), [*greedy, pinned, free])
    assert failures == {}
    alone = [single(engine, r)[1].token_ids for r in greedy]
    assert [answers[0][1].token_ids, answers[1][1].token_ids] == alone
    assert answers[2][1].token_ids == alone[0]
    assert len(answers[3][1].token_ids) >= 1


def test_a_server_thread_submits_while_the_engine_thread_steps(engine: Engine) -> None:
    requests = requests_of_every_kind()[:5]
    alone = [single(engine, r)[1].token_ids for r in requests]
    batch = BatchEngine(engine, max_batch=2)
    tickets: list[int] = []
    submitter = threading.Thread(target=lambda: tickets.extend(batch.submit(r) for r in requests))
    submitter.start()
    done: dict[int, GenerationStats] = {}
    while submitter.is_alive() or batch.busy:
        for ticket, event in batch.step():
            if isinstance(event, GenerationStats):
                done[ticket] = event
    submitter.join()
    assert [done[t].token_ids for t in tickets] == alone


def test_misuse_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(InputError, match="at least 1"):
        BatchEngine(engine, max_batch=0)
    batch = BatchEngine(engine, max_batch=2)
    batch.submit(requests_of_every_kind()[0])
    errors: list[Exception] = []

    def step_elsewhere() -> None:
        try:
            batch.step()
        except EngineError as exc:
            errors.append(exc)

    worker = threading.Thread(target=step_elsewhere)
    worker.start()
    worker.join()
    assert errors and "thread" in str(errors[0])


def _project_of(folder: Path, sizes: list[tuple[int, int]]) -> Project:
    folder.mkdir()
    for i, (w, h) in enumerate(sizes):
        make_image(w, h, 100 + i).image.save(folder / f"shot{i}.png")
    return Project(folder)


def _one_at_a_time(engine: Engine) -> Detector:
    def detect(image: LoadedImage, labels: tuple[str, ...], cancel: threading.Event) -> Any:
        request = detection_request(image, labels, GREEDY)
        text = "".join(
            e.text for e in engine.stream_chat(request, cancel=cancel) if isinstance(e, TextDelta)
        )
        return parse_detections(text, image.width, image.height)

    return detect


SIZES = [(96, 64), (64, 96), (300, 200), (512, 512), (80, 80)]


def test_annotate_in_batches_saves_what_one_at_a_time_saves(engine: Engine, tmp_path: Path) -> None:
    alone = _project_of(tmp_path / "alone", SIZES)
    list(annotate_project(alone, "car, person", _one_at_a_time(engine)))
    together = _project_of(tmp_path / "together", SIZES)
    events = list(
        annotate_project(together, "car, person", engine_detector(engine, GREEDY, batch=3))
    )
    done = [e for e in events if isinstance(e, ImageAnnotated)]
    assert sorted(e.image for e in done) == [f"shot{i}.png" for i in range(5)]
    assert [e.index for e in done] == [1, 2, 3, 4, 5]
    for i in range(5):
        assert together.load(f"shot{i}.png") == alone.load(f"shot{i}.png")


def test_annotate_in_batches_cancels_and_resumes(engine: Engine, tmp_path: Path) -> None:
    project = _project_of(tmp_path / "p", SIZES)
    stop = threading.Event()
    first: list[object] = []
    for event in annotate_project(
        project, "car", engine_detector(engine, GREEDY, batch=2), cancel=stop
    ):
        first.append(event)
        if isinstance(event, ImageAnnotated):
            stop.set()  # Cancel after the first saved image
    saved = [e.image for e in first if isinstance(e, ImageAnnotated)]
    finished = first[-1]
    assert len(saved) == 1 and isinstance(finished, BatchFinished) and finished.cancelled
    on_disk = [f"shot{i}.png" for i in range(5) if project.load(f"shot{i}.png") is not None]
    assert on_disk == saved  # answers cut short are not saved
    again = list(annotate_project(project, "car", engine_detector(engine, GREEDY, batch=4)))
    skipped = [e.image for e in again if isinstance(e, ImageSkipped)]
    assert skipped == saved
    assert len([e for e in again if isinstance(e, ImageAnnotated)]) == 4


def test_annotate_in_batches_reports_an_unreadable_image_and_goes_on(
    engine: Engine, tmp_path: Path
) -> None:
    project = _project_of(tmp_path / "p", SIZES[:3])
    (tmp_path / "p" / "shot1.png").write_bytes(b"not a png")
    events = list(annotate_project(project, "car", engine_detector(engine, GREEDY, batch=2)))
    failed = [e for e in events if isinstance(e, ImageFailed)]
    assert [e.image for e in failed] == ["shot1.png"] and "\n" not in failed[0].message
    assert sorted(e.image for e in events if isinstance(e, ImageAnnotated)) == [
        "shot0.png",
        "shot2.png",
    ]


def test_leaving_a_run_early_ends_its_answers_and_the_engine_goes_on(engine: Engine) -> None:
    requests = requests_of_every_kind()[:4]
    batch = BatchEngine(engine, max_batch=2)
    theirs = threading.Event()
    events = batch.run(enumerate(requests), cancel=theirs)
    next(events)  # the first event: the answers are under way
    events.close()  # the caller stops listening mid-answer
    assert not theirs.is_set() and not batch.busy
    answers, failures = batched(batch, requests[:2])  # the same BatchEngine runs again
    assert failures == {}
    assert [answers[i][1].token_ids for i in range(2)] == [
        single(engine, r)[1].token_ids for r in requests[:2]
    ]
