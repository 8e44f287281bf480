"""The command line's entry: parse, run, print errors and warnings, and give the exit code."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import (
    CudaConstraintsError,
)
from ..errors.interrupts import interrupt_of
from ..files.config import project_values
from .output import safe_text, warnings_to
from .parser import build_parser
from .progress import Progress

PROG = "cuda-constraints"


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    # Help shows the project's own values beside the defaults; reading them costs every other run nothing.
    parser = build_parser(project_values(Path.cwd()) if {"-h", "--help"} & set(words) else None)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named with the command's own usage line, not the top-level one
        (getattr(args, "parser", None) or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    # One display for progress and warnings (warnings print even with --quiet).
    args.progress = Progress(quiet=getattr(args, "quiet", False))
    with warnings_to(args.progress, verbose=getattr(args, "verbose", False)):
        try:
            code: int = args.run(args)
            return code
        except CudaConstraintsError as error:
            print(f"error: {safe_text(error.message())}", file=sys.stderr)
            return error.exit_code
        except (KeyboardInterrupt, RuntimeError) as error:
            interrupted = interrupt_of(error)
            if interrupted is None:
                raise
            args.progress.done()
            outcome = interrupted.outcome or getattr(args, "on_interrupt", "")
            print(f"interrupted ({interrupted.name})" + (f"; {outcome}" if outcome else ""), file=sys.stderr)
            return interrupted.exit_code
