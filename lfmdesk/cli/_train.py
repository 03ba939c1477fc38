"""``lfmdesk train`` and ``lfmdesk adapters list|remove``: adapters from a project's boxes.

    lfmdesk train PROJECT --labels "car, person" [--model bf16] [--steps N] [--rank R]
                  [--lr X] [--name NAME] [--resume] [--max-seq-length N] [--json]
    lfmdesk adapters list [--json]
    lfmdesk adapters remove NAME

The first Ctrl-C stops after the current step and saves; ``--resume`` continues from there.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from lfmdesk.cli._live import _ctrl_c_sets
from lfmdesk.cli._output import ProgressBar, consume_download
from lfmdesk.core import AppSettings, InputError, ensure_model, resolve_model, split_labels
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.train._loop import (
    ExamplesProgress,
    PlannedRun,
    ScoringProgress,
    TrainEvent,
    TrainFinished,
    TrainingStarted,
    TrainNote,
    TrainStep,
    TrainStopped,
    plan_resume,
    plan_run,
    train_adapter,
)
from lfmdesk.core.train._report import format_eta, left_out_line, report_lines
from lfmdesk.core.train._run import TrainConfig
from lfmdesk.core.train._store import (
    interrupted_runs,
    list_adapters,
    new_adapter_name,
    precision_text,
    remove_adapter,
)

__all__ = ["add_train_parsers", "cmd_adapters", "cmd_train"]

# option (dest) -> TrainConfig field, for the settings a resumed run must keep
_RUN_OPTIONS = {
    "steps": "steps",
    "rank": "rank",
    "learning_rate": "learning_rate",
    "max_seq_length": "max_seq_length",
}


def add_train_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_vision_flags: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the ``train`` and ``adapters`` subcommands."""
    p = sub.add_parser(
        "train",
        help="fine-tune a LoRA adapter on the boxes you made or checked in a project",
        description="Teach the model PROJECT's boxes: only boxes a person drew, fixed or "
        "imported count, never the model's own. A fifth of the pictures is held out and "
        "Detect is scored on it, base and adapter. Ctrl-C stops after the current step and "
        "saves; run again with --resume to continue.",
    )
    p.add_argument("project", metavar="PROJECT", help="the project folder")
    p.add_argument(
        "--labels", "-l", help='what to teach, e.g. "car, person" (default: the project\'s labels)'
    )
    p.add_argument(
        "--steps", type=int, metavar="N", help="training steps, one picture each (default 200)"
    )
    p.add_argument("--rank", type=int, metavar="R", help="LoRA rank (default 8)")
    p.add_argument(
        "--lr", dest="learning_rate", type=float, metavar="X", help="learning rate (default 2e-4)"
    )
    p.add_argument("--name", help="the adapter's name (default: the project folder's name)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--max-seq-length", type=int, help="longest example in tokens (default 2048)")
    p.add_argument("--no-eval", action="store_true", help="do not score the held-out pictures")
    p.add_argument("--json", action="store_true", help="print the adapter's metadata as JSON")
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", help="the base: variant key (default 8bit), repo or folder")
    g.add_argument(
        "--compute",
        choices=("auto", "native", "float32"),
        default="auto",
        help="auto: float32 on CPU (quantized weights train ~20x slower there)",
    )
    add_vision_flags(p)

    adapters = sub.add_parser("adapters", help="list or remove trained adapters")
    asub = adapters.add_subparsers(dest="action", metavar="ACTION", required=True)
    alist = asub.add_parser("list", help="adapters and interrupted runs")
    alist.add_argument("--json", action="store_true")
    arm = asub.add_parser("remove", help="delete an adapter (or an interrupted run)")
    arm.add_argument("name", metavar="NAME")


# --- the run's settings ---------------------------------------------------------------------


def _resumed_plan(args: argparse.Namespace, project: Project) -> PlannedRun:
    name = args.name
    if name is None:
        runs = interrupted_runs(project.root)
        if len(runs) != 1:
            found = f"runs {', '.join(runs)}" if runs else "no interrupted run"
            raise InputError(f"{project.root}: {found} to resume; say which with --name")
        name = runs[0]
    plan = plan_resume(name)
    config = plan.config
    given = {opt: getattr(args, opt) for opt in _RUN_OPTIONS if getattr(args, opt) is not None}
    if args.labels is not None:
        given["labels"] = split_labels(args.labels)
    if args.model is not None:
        given["model"] = args.model
    for option, value in given.items():
        saved = getattr(config, _RUN_OPTIONS.get(option, option))
        if value != saved:
            raise InputError(
                f"run {name!r} was started with {option.replace('_', '-')} {saved!r}; "
                "--resume keeps a run's settings (leave the option out)"
            )
    return plan


def _new_plan(args: argparse.Namespace, settings: AppSettings, project: Project) -> PlannedRun:
    labels = split_labels(args.labels) if args.labels is not None else project.labels()
    if not labels:
        raise InputError('no labels to teach: give some, e.g. --labels "car, person"')
    if args.name is None and interrupted_runs(project.root):
        runs = ", ".join(interrupted_runs(project.root))
        raise InputError(
            f"{project.root} has an interrupted run ({runs}): add --resume to continue it, "
            "or --name NEW to start another"
        )
    options = {opt: getattr(args, opt) for opt in _RUN_OPTIONS if getattr(args, opt) is not None}
    config = TrainConfig(
        project=project.root,
        labels=tuple(labels),
        model=settings.model,
        name=args.name or new_adapter_name(project.root),
        vision=settings.vision,
        compute=args.compute,
        evaluate=not args.no_eval,
        **options,
    )
    return plan_run(config)  # checks the boxes before any download


# --- progress on the terminal ---------------------------------------------------------------


class _Progress:
    """One line per stage on stderr, redrawn in place on a terminal."""

    def __init__(self) -> None:
        self.bar = ProgressBar(amount=str)

    def show(self, event: TrainEvent) -> None:
        handler = _SHOW.get(type(event))
        if handler is not None:
            handler(self, event)

    def _note(self, event: TrainNote) -> None:
        sys.stderr.write(f"lfmdesk: note: {event.message}\n")

    def _examples(self, event: ExamplesProgress) -> None:
        self.bar.update("preparing pictures", event.done, event.total, final=_last(event))

    def _scoring(self, event: ScoringProgress) -> None:
        label = f"scoring the {event.which} on held-out pictures"
        self.bar.update(label, event.done, event.total, final=_last(event))

    def _started(self, event: TrainingStarted) -> None:
        resumed = f", resuming at step {event.step}" if event.step else ""
        sys.stderr.write(
            f"training {event.name!r}: {event.train_images} pictures, {event.validation_images} "
            f"held out, {event.boxes} boxes{resumed}\n"
        )
        line = left_out_line(event.left_out)
        if line:
            sys.stderr.write(f"lfmdesk: note: {line}\n")

    def _step(self, event: TrainStep) -> None:
        label = (
            f"training · loss {event.loss:.3f} · {event.seconds_per_step:.1f} s/step · "
            f"ETA {format_eta(event.eta_seconds)}"
        )
        self.bar.update(label, event.step, event.steps, final=event.step == event.steps)


def _last(event: ExamplesProgress | ScoringProgress) -> bool:
    return event.done == event.total


_SHOW: dict[type, Callable[[_Progress, Any], None]] = {
    TrainNote: _Progress._note,
    ExamplesProgress: _Progress._examples,
    ScoringProgress: _Progress._scoring,
    TrainingStarted: _Progress._started,
    TrainStep: _Progress._step,
}


def cmd_train(args: argparse.Namespace, settings: AppSettings) -> int:
    """Train (or resume) an adapter and print what changed on the held-out pictures."""
    project = Project(args.project)
    plan = _resumed_plan(args, project) if args.resume else _new_plan(args, settings, project)
    config = plan.config
    folder = consume_download(ensure_model(resolve_model(config.model)))
    cancel, progress = threading.Event(), _Progress()
    end: TrainFinished | TrainStopped | None = None
    with _ctrl_c_sets(cancel):
        for event in train_adapter(plan, folder, cancel=cancel):
            progress.show(event)
            if isinstance(event, (TrainFinished, TrainStopped)):
                end = event
    if isinstance(end, TrainStopped):
        saved = (
            f"step {end.step}/{end.steps} is saved; continue with: lfmdesk train "
            f"{args.project} --name {config.name} --resume"
            if end.folder is not None
            else "nothing was saved"
        )
        sys.stderr.write(f"\nlfmdesk: stopped; {saved}\n")
        return 130
    assert end is not None  # the generator ends with TrainFinished or TrainStopped
    if args.json:
        sys.stdout.write(json.dumps(end.info.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join([*report_lines(end.info), f"saved in {end.folder}"]) + "\n")
    return 0


# --- adapters list | remove -----------------------------------------------------------------


def _list_row(entry: Any) -> dict[str, Any]:
    info = entry.info
    if info is None:
        return {
            "name": entry.name,
            "finished": False,
            "step": entry.step,
            "steps": entry.steps,
            "problem": entry.problem,
        }
    return {"finished": True, **info.to_dict()}


def _list_line(entry: Any) -> str:
    info = entry.info
    if entry.problem:
        return f"{entry.name}  (damaged: {entry.problem})"
    if info is None:
        return f"{entry.name}  (interrupted at step {entry.step}/{entry.steps}: train --resume)"
    score = info.adapter_score
    held = (
        f", held-out label hits {score.label_hits}/{score.with_boxes}"
        if score is not None and score.with_boxes
        else ""
    )
    return (
        f"{info.name}  {info.base.spec} ({info.base.name}, {precision_text(info.base.bits)})  "
        f"labels: {', '.join(info.labels)}  {info.train_images}+{info.validation_images} "
        f"pictures{held}  {info.created[:10]}"
    )


def cmd_adapters(args: argparse.Namespace, settings: AppSettings) -> int:
    """List or remove adapters."""
    if args.action == "remove":
        folder = remove_adapter(args.name)
        sys.stdout.write(f"removed {folder}\n")
        return 0
    entries = list_adapters()
    if args.json:
        sys.stdout.write(json.dumps([_list_row(e) for e in entries], indent=2) + "\n")
    elif not entries:
        sys.stdout.write("no adapters yet: lfmdesk train PROJECT --labels ...\n")
    else:
        sys.stdout.write("\n".join(_list_line(e) for e in entries) + "\n")
    return 0
