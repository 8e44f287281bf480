"""`python -m resolver` and the `cuda-constraints` console script.

Signals are handled before anything heavy is imported, so a Ctrl-C while the tool starts prints one line
and exits 130, like one at any later point (the CLI reports those itself).
"""

from __future__ import annotations

import signal
import sys


def run() -> None:
    try:
        from .errors.interrupts import handle_signals

        handle_signals()
        from .cli.main import main

        code = main()
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        code = 128 + signum
    sys.exit(code)


if __name__ == "__main__":
    run()
