"""Box metrics: hand-computed cases, and COCO mAP equal to pycocotools' on random projects."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lfmdesk.core import (
    ChatRequest,
    GenerationStats,
    Project,
    TextDelta,
    export_dataset,
    load_image,
    make_box,
)
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.evaluate._coco_ap import label_ap, rank_score
from lfmdesk.core.evaluate._configs import EvalConfig
from lfmdesk.core.evaluate._metrics import LabeledBox, iou, match_greedy, strict_answer
from lfmdesk.core.evaluate._runner import EvalFinished, evaluate_project
from lfmdesk.core.evaluate._scoring import score_answer, score_config


def box(label: str, *px: int) -> LabeledBox:
    return LabeledBox(label, tuple(px))  # type: ignore[arg-type]


def answer_text(boxes: list[LabeledBox], width: int, height: int) -> str:
    items = [
        {
            "label": b.label,
            "bbox": [b.px[0] / width, b.px[1] / height, b.px[2] / width, b.px[3] / height],
        }
        for b in boxes
    ]
    return json.dumps(items)


def scored(truth: list[LabeledBox], predicted: list[LabeledBox], labels=("car",)):
    text = answer_text(predicted, 100, 100)
    image = score_answer("a.png", 100, 100, truth, text, labels)
    return score_config(EvalConfig("8bit"), [image], labels)


# --- hand-computed ---------------------------------------------------------------------


def test_a_perfect_answer_scores_one_everywhere() -> None:
    truth = [box("car", 10, 10, 50, 40), box("car", 60, 60, 90, 95)]
    result = scored(truth, truth)
    c = result.overall.counts
    assert (c.precision, c.recall, c.f1, c.mean_iou) == (1.0, 1.0, 1.0, 1.0)
    assert result.overall.ap == pytest.approx(1.0) and result.overall.ap50 == pytest.approx(1.0)
    assert result.parse_failures == 0


def test_nothing_predicted_is_recall_zero() -> None:
    result = scored([box("car", 10, 10, 50, 40)], [])
    c = result.overall.counts
    assert c.recall == 0.0 and c.f1 == 0.0 and c.precision is None
    assert result.overall.ap == 0.0
    assert c.acc50 == 0.0 and c.acc_images == 1


def test_one_false_box_beside_two_right_ones_is_precision_two_thirds() -> None:
    truth = [box("car", 10, 10, 50, 40), box("car", 60, 60, 90, 95)]
    result = scored(truth, [*truth, box("car", 0, 70, 20, 99)])
    c = result.overall.counts
    assert c.precision == pytest.approx(2 / 3) and c.recall == 1.0
    assert (c.tp, c.fp, c.fn) == (2, 1, 0)


def test_a_wrong_label_never_matches() -> None:
    result = scored([box("car", 10, 10, 50, 40)], [box("dog", 10, 10, 50, 40)], ("car", "dog"))
    c = result.overall.counts
    assert (c.tp, c.fp, c.fn) == (0, 1, 1)
    per_label = dict(result.per_label)
    assert per_label["dog"].counts.precision == 0.0 and per_label["dog"].counts.recall is None
    assert per_label["car"].counts.recall == 0.0
    # A label nobody asked for is a false positive too.
    unasked = scored([box("car", 10, 10, 50, 40)], [box("bus", 10, 10, 50, 40)])
    assert unasked.overall.counts.fp == 1


def test_iou_exactly_half_matches_and_just_under_does_not() -> None:
    truth = box("car", 0, 0, 10, 10)
    assert iou(truth.px, (0, 0, 10, 5)) == 0.5
    assert match_greedy([truth], [box("car", 0, 0, 10, 5)]) == [(0, 0, 0.5)]
    assert match_greedy([truth], [box("car", 0, 0, 10, 4)]) == []


def test_swapped_corners_are_put_in_order() -> None:
    assert iou((10, 10, 0, 0), (0, 0, 10, 10)) == 1.0
    result = scored([box("car", 0, 0, 10, 10)], [box("car", 10, 10, 0, 0)])
    assert result.overall.counts.tp == 1


def test_matching_is_one_to_one_and_greedy_by_iou() -> None:
    truth = [box("car", 0, 0, 10, 10)]
    predicted = [box("car", 0, 0, 10, 8), box("car", 0, 0, 10, 10)]  # IoU 0.8, then 1.0
    assert match_greedy(truth, predicted) == [(1, 0, 1.0)]
    result = scored(truth, predicted)
    assert (result.overall.counts.tp, result.overall.counts.fp) == (1, 1)


def test_acc_at_half_takes_the_first_box_only() -> None:
    truth = [box("car", 0, 0, 10, 10)]
    miss = scored(truth, [box("car", 50, 50, 60, 60), box("car", 0, 0, 10, 10)])
    assert miss.overall.counts.acc50 == 0.0
    hit = scored(truth, [box("car", 0, 0, 10, 10), box("car", 50, 50, 60, 60)])
    assert hit.overall.counts.acc50 == 1.0
    several = scored([*truth, box("car", 50, 50, 60, 60)], truth)
    assert several.overall.counts.acc50 is None  # only images with exactly one box count


def test_ap_of_a_wrong_box_ranked_first_is_a_half() -> None:
    truth = [box("car", 0, 0, 10, 10)]
    ap = label_ap([(truth, [box("car", 50, 50, 60, 60), truth[0]])], "car")
    assert ap is not None and ap.ap == pytest.approx(0.5) and ap.ap50 == pytest.approx(0.5)
    assert rank_score(0) == 1.0 and rank_score(2) == pytest.approx(1 / 3)


def test_parse_failures_are_answers_not_in_the_exact_format() -> None:
    assert strict_answer('[{"label": "car", "bbox": [0, 0, 1, 1]}]')
    assert strict_answer("[]")
    assert not strict_answer('```json\n[{"label": "car", "bbox": [0, 0, 1, 1]}]\n```')
    assert not strict_answer('[{"label": "car", "bbox": [0, 0, 1]}]')
    assert not strict_answer("a car")
    image = score_answer("a.png", 10, 10, [], "Sure! [0, 0, 1, 1]", ("car",))
    assert not image.parsed and image.predicted  # the tolerant parser still read the box


# --- the same mAP as pycocotools, through lfmdesk's COCO export -----------------------


class _AnswerBook:
    """An engine that gives each image the answer written for it (the metrics are under test)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[object]:
        yield TextDelta(self.answers[request.images[-1].content_hash])
        yield GenerationStats(1, 1, 0, 0, 1, 0.0, 0.01, 1, 1.0, 1 << 20, "stop", ())


def _jitter(rng: np.random.Generator, px: tuple[int, ...], w: int, h: int) -> tuple[int, ...]:
    x1, y1, x2, y2 = px
    d = [int(v) for v in rng.integers(-6, 7, size=4)]
    x1, x2 = sorted((min(max(x1 + d[0], 0), w), min(max(x2 + d[2], 0), w)))
    y1, y2 = sorted((min(max(y1 + d[1], 0), h), min(max(y2 + d[3], 0), h)))
    return (x1, y1, max(x2, x1 + 1), max(y2, y1 + 1))


def _random_box(rng: np.random.Generator, w: int, h: int) -> tuple[int, ...]:
    x1, y1 = int(rng.integers(0, w - 2)), int(rng.integers(0, h - 2))
    return (x1, y1, int(rng.integers(x1 + 1, w)), int(rng.integers(y1 + 1, h)))


def _random_project(root: Path, rng: np.random.Generator, labels: list[str]) -> dict[str, str]:
    """Images with a person's boxes, and for each a plausible answer (content hash → text)."""
    project, answers = Project(root), {}
    project.save_labels(labels)
    for n in range(int(rng.integers(1, 6))):
        w, h = int(rng.integers(30, 240)), int(rng.integers(30, 240))
        path = root / f"img{n}.png"
        Image.new("RGB", (w, h), (n * 40 % 255, 90, 160)).save(path)
        truth = [
            (str(rng.choice(labels)), _random_box(rng, w, h))
            for _ in range(int(rng.integers(1, 5)))
        ]
        ann = ImageAnnotation(
            path.name, w, h, tuple(make_box(lab, px, w, h) for lab, px in truth), edited=True
        )
        project.save(ann)
        predicted = []
        for label, px in truth:
            if rng.random() < 0.8:
                near = _jitter(rng, px, w, h)
                predicted.append((label if rng.random() < 0.9 else str(rng.choice(labels)), near))
        predicted += [
            (str(rng.choice(labels)), _random_box(rng, w, h)) for _ in range(rng.integers(0, 4))
        ]
        order = rng.permutation(len(predicted))
        items = [
            {
                "label": predicted[i][0],
                "bbox": [
                    round(v / s, 6) for v, s in zip(predicted[i][1], (w, h, w, h), strict=True)
                ],
            }
            for i in order
        ]
        answers[load_image(path).content_hash] = json.dumps(items)
    return answers


def _pycocotools_map(gt_file: Path, report_result, cat_ids: dict[str, int]) -> tuple[float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dets = []
    for image_id, image in enumerate(report_result.images, 1):
        for rank, b in enumerate(image.predicted):
            x1, y1, x2, y2 = b.px
            dets.append(
                {
                    "image_id": image_id,
                    "category_id": cat_ids[b.label],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": rank_score(rank),
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        if not dets:
            return 0.0, 0.0
        evaluator = COCOeval(gt, gt.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0]), float(evaluator.stats[1])


def test_map_equals_pycocotools_on_200_random_projects(tmp_path) -> None:
    rng = np.random.default_rng(2024)
    checked = 0
    for n in range(200):
        labels = ["car", "person", "dog"][: int(rng.integers(1, 4))]
        root = tmp_path / f"p{n}"
        root.mkdir()
        answers = _random_project(root, rng, labels)
        project = Project(root)
        events = list(
            evaluate_project(
                project, labels, [EvalConfig("book")], lambda _v, a=answers: _AnswerBook(a)
            )
        )
        report = events[-1].report if isinstance(events[-1], EvalFinished) else None
        assert report is not None and len(report.results) == 1
        result = report.results[0]
        out = tmp_path / f"coco{n}"
        export_dataset(project, "coco", out, images=report.images)
        doc = json.loads((out / "annotations.json").read_text())
        cat_ids = {c["name"]: c["id"] for c in doc["categories"]}
        expected_map, expected_ap50 = _pycocotools_map(out / "annotations.json", result, cat_ids)
        assert result.overall.ap == pytest.approx(expected_map, abs=1e-6), n
        assert result.overall.ap50 == pytest.approx(expected_ap50, abs=1e-6), n
        checked += 0 < expected_map < 1
    assert checked > 100  # most projects are neither perfect nor hopeless
