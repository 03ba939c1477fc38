"""``lfmdesk``: with no arguments it opens the window; with a subcommand it is the CLI."""

from __future__ import annotations

import sys

# Flags that belong to the command line; any other leading flag (--model, ...) opens the window.
_CLI_FLAGS = ("-h", "--help", "--version")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lfmdesk`` console script."""
    import multiprocessing

    multiprocessing.freeze_support()  # the engine process of a frozen (bundled) app
    args = sys.argv[1:] if argv is None else argv
    if not args or (args[0].startswith("-") and args[0] not in _CLI_FLAGS):
        from lfmdesk.gui import run_app

        return run_app(args)
    from lfmdesk.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
