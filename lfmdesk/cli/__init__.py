"""The ``lfmdesk`` command line (Qt-free). ``main(argv)`` returns the exit code."""

from __future__ import annotations

import logging
import os
import sys
import traceback

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. Errors print one line to stderr and give a non-zero exit code."""
    from lfmdesk.cli._args import build_parser, settings_from_args
    from lfmdesk.core import LfmdeskError, load_settings

    logging.basicConfig(level=logging.WARNING, format="lfmdesk: warning: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from lfmdesk.cli._commands import COMMANDS

    try:
        settings = settings_from_args(args, load_settings())
        return COMMANDS[args.command](args, settings)
    except LfmdeskError as exc:
        sys.stderr.write(f"lfmdesk: error: {exc}\n")
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
            f"lfmdesk: internal error: {type(exc).__name__}: {exc} "
            "(set LFMDESK_DEBUG=1 for details)\n"
        )
        return 1
