"""`python -m resolver` and the `cuda-constraints` console script.

Signals are handled before anything heavy is imported, so a Ctrl-C while the tool starts prints one line
and exits 130, like one at any later point (the CLI reports those itself).

Once a run is over, the process ends without freeing its objects one by one: a compile holds a few hundred
thousand (the releases and files of its projects' pages), and the interpreter's teardown took 70 ms of a
0.6 s run from the cache. Threads are joined and exit handlers run first, as always.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys

_exit_code: list[int] = []


def run() -> None:
    atexit.register(_end_without_teardown)  # registered first, so it runs after every other exit handler
    try:
        from .errors.interrupts import handle_signals

        handle_signals()
        from .cli.main import main

        code = main()
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        code = 128 + signum
    _exit_code.append(code)
    sys.exit(code)


def _end_without_teardown() -> None:
    if not _exit_code:
        return  # not a finished run (a usage error exits from argparse): the interpreter ends it as usual
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        return  # a reader that went away (`| head`): the interpreter reports it as it always does
    os._exit(_exit_code[0])


if __name__ == "__main__":
    run()
