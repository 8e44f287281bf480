"""`python -m resolver` and the `cuda-constraints` console script.

Signals are handled before anything heavy is imported, so a Ctrl-C while the tool starts prints one line
and exits 130, like one at any later point (the CLI reports those itself).

What importing made, and once a run is over all its objects, are frozen out of the cyclic garbage
collector's reach (`gc.freeze`): a full collection in a run walked the modules' objects again, and the
collections the interpreter makes as it ends walked a compile's few hundred thousand (the releases and
files of its projects' pages), 70 ms of a 0.4 s run from the cache. The process then ends as any other
does: threads joined, every exit handler run, streams flushed.
"""

from __future__ import annotations

import gc
import signal
import sys


def run() -> None:
    try:
        from .errors.interrupts import handle_signals

        handle_signals()
        from .cli.main import main

        gc.freeze()  # what importing made lives as long as the process: no collection need look at it again
        code = main()
    except (KeyboardInterrupt, RuntimeError) as error:
        # A Ctrl-C while a module is imported may come wrapped in a RuntimeError, as `interrupt_of` unwraps it;
        # unwrapped here without it, since importing errors.interrupts may be what was interrupted.
        interrupt = error if isinstance(error, KeyboardInterrupt) else error.__cause__
        if not isinstance(interrupt, KeyboardInterrupt):
            raise
        signum = getattr(interrupt, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        code = 128 + signum
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
