"""The bundle's entry point: the ``lfmdesk`` console script, frozen.

``freeze_support`` comes first: the engine runs in a child process started with the "spawn"
method, which re-runs this executable with multiprocessing's arguments; freeze_support turns
that run into the child instead of a second window.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from lfmdesk.__main__ import main

    sys.exit(main())
