"""``lfmdesk eval``: how good the boxes are, per model variant, tiling and decoding.

Ground truth is the boxes a person made or imported in the project (✎). Every answer is
cached in ``PROJECT/.lfmdesk/eval/answers``: the same command again makes no model call, and
after Ctrl-C it resumes. The table goes to stdout (``--json``: the whole report), progress to
stderr, ``report.csv`` and ``report.json`` to ``--out`` (default ``PROJECT/.lfmdesk/eval``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from lfmdesk.cli._engine import open_engine
from lfmdesk.cli._output import ProgressBar
from lfmdesk.core import AppSettings
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.evaluate._configs import make_configs
from lfmdesk.core.evaluate._report import EvalReport, write_report
from lfmdesk.core.evaluate._runner import (
    AnswerFailed,
    AnswerScored,
    ConfigStarted,
    EvalFinished,
    EvalStarted,
    eval_folder,
    evaluate_project,
)
from lfmdesk.core.live._session import ChatEngineLike

__all__ = ["add_eval_parser", "cmd_eval"]


def add_eval_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_model_flags: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the ``eval`` subcommand."""
    p = sub.add_parser(
        "eval",
        help="measure box quality per model variant, tiling and decoding",
        description="Detect LABELS in every image of PROJECT that has boxes a person made or "
        "imported, and score the answers against them: precision/recall/F1 at IoU 0.5, mean "
        "IoU, Acc@0.5, COCO mAP/AP50, parse failures, latency, image tokens, peak memory. "
        "Answers are cached: run again to resume or to re-score for free.",
    )
    p.add_argument("project", metavar="PROJECT", help="a project folder with ground truth")
    p.add_argument("--labels", "-l", required=True, help='what to find, e.g. "car,person"')
    p.add_argument("--variants", help="models to compare, e.g. 4bit,8bit,bf16 (default: --model)")
    p.add_argument(
        "--tiling",
        default="default",
        help="tiling presets to compare: default, nosplit, maxN (e.g. default,nosplit,max64)",
    )
    p.add_argument(
        "--out", "-o", metavar="DIR", help="report folder (default PROJECT/.lfmdesk/eval)"
    )
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument("--fresh", action="store_true", help="ask again even for cached answers")
    add_model_flags(p)  # --constrained / --free pick one decoding; neither: both
    # The remote-backend work may give every command --backend; then the model flags carry it.
    with contextlib.suppress(argparse.ArgumentError):
        p.add_argument(
            "--backend",
            dest="backend",
            metavar="URL",
            default=None,
            help="an OpenAI-compatible server (vLLM) to evaluate instead of local MLX",
        )


def _decodings(args: argparse.Namespace) -> tuple[str, ...]:
    choice = getattr(args, "constrained", None)
    return ("constrained", "free") if choice is None else ("constrained",) if choice else ("free",)


def _opener(args: argparse.Namespace, settings: AppSettings) -> Callable[[str], ChatEngineLike]:
    def open_variant(variant: str) -> ChatEngineLike:
        sys.stderr.write(f"loading {variant}\n")
        engine: ChatEngineLike = open_engine(args, dataclasses.replace(settings, model=variant))
        return engine

    return open_variant


def _run(args: argparse.Namespace, settings: AppSettings, project: Project) -> EvalReport:
    configs = make_configs(
        args.variants or settings.model, args.tiling, _decodings(args), vision=settings.vision
    )
    bar = ProgressBar(amount=str)
    report: EvalReport | None = None
    events = evaluate_project(
        project,
        args.labels,
        configs,
        _opener(args, settings),
        sampling=settings.sampling,
        vision=settings.vision,
        model_scope=getattr(args, "backend", None) or "local",
        fresh=args.fresh,
    )
    for event in events:
        if isinstance(event, EvalStarted):
            plan = event.plan
            sys.stderr.write(
                f"{len(plan.images)} images with ground truth ({len(plan.skipped)} without, "
                f"skipped); {plan.answers} answers, {plan.cached} cached\n"
            )
            for key, message in plan.problems:
                sys.stderr.write(f"lfmdesk: warning: {key}: {message}\n")
        elif isinstance(event, ConfigStarted):
            sys.stderr.write(f"[{event.index}/{event.total}] {event.config.name}\n")
        elif isinstance(event, AnswerFailed):
            sys.stderr.write(f"\nlfmdesk: warning: {event.key}: {event.message}\n")
        if isinstance(event, (AnswerScored, AnswerFailed)):
            bar.update("evaluating", event.done, event.total, final=event.done == event.total)
        elif isinstance(event, EvalFinished):
            report = event.report
    assert report is not None  # the generator always ends with EvalFinished
    return report


def cmd_eval(args: argparse.Namespace, settings: AppSettings) -> int:
    """Evaluate the configurations and write the report."""
    project = Project(args.project)
    try:
        report = _run(args, settings, project)
    except KeyboardInterrupt:
        sys.stderr.write(
            "\nlfmdesk: stopped; the answers so far are cached — run again to resume\n"
        )
        return 130
    out = Path(args.out).expanduser() if args.out else eval_folder(project)
    csv_path, json_path = write_report(report, out)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=1) + "\n")
    else:
        sys.stdout.write(report.table() + "\n")
    sys.stderr.write(f"report: {csv_path}, {json_path}\n")
    failed = sum(r.failed for r in report.results)
    return 1 if failed else 0
