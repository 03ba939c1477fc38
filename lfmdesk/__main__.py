"""``lfmdesk``: with no arguments it opens the window; with a subcommand it is the CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lfmdesk`` console script."""
    args = sys.argv[1:] if argv is None else argv
    from lfmdesk.cli import main as cli_main

    if not args or (args[0] in ("--model",) and len(args) <= 2):
        try:
            from lfmdesk.gui import run_app  # type: ignore[attr-defined]
        except ImportError:
            # The window arrives with the desktop issue; until then, show the CLI help.
            return cli_main(["--help"])
        return int(run_app(args))
    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
