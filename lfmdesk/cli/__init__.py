"""The ``lfmdesk`` command line (Qt-free). ``main(argv)`` returns the exit code."""

from __future__ import annotations

import logging
import os
import sys
import traceback

__all__ = ["main"]


class _TerminalFormatter(logging.Formatter):
    """Warnings name files and labels from disk: escape what a terminal would act on."""

    def format(self, record: logging.LogRecord) -> str:
        from lfmdesk.cli._output import terminal_safe

        return terminal_safe(super().format(record))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. Errors print one line to stderr and give a non-zero exit code."""
    from lfmdesk.cli._args import build_parser, settings_from_args
    from lfmdesk.cli._output import terminal_safe
    from lfmdesk.core import LfmdeskError, open_settings

    handler = logging.StreamHandler()
    handler.setFormatter(_TerminalFormatter("lfmdesk: warning: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from lfmdesk.cli._commands import COMMANDS

    try:
        loaded = open_settings()  # a damaged settings file: one warning, then the defaults
        if loaded.problem:
            sys.stderr.write(f"lfmdesk: warning: {terminal_safe(loaded.problem)}\n")
        settings = settings_from_args(args, loaded.settings)
        return COMMANDS[args.command](args, settings)
    except LfmdeskError as exc:
        sys.stderr.write(f"lfmdesk: error: {terminal_safe(str(exc))}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("lfmdesk: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # last resort: one line, the details only on request
        if os.environ.get("LFMDESK_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(
            f"lfmdesk: internal error: {type(exc).__name__}: {terminal_safe(str(exc))} "
            "(set LFMDESK_DEBUG=1 for details)\n"
        )
        return 1
