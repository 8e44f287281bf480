"""One change measured alone: our compile at a git revision (A) against the working tree (B), runs alternated.

    python benchmarks/ab.py --input sglang --phase cold --runs 5 [--base HEAD]

This machine's speed drifts within the hour, so a change is judged by A and B run turn about in one
sitting, never by two runs of `compare.py`. Both use this interpreter, with bytecode compiled ahead (as an
installed package has it); `new` and `existing` share one filled cache and pass `--offline`, so that a
page's ten minutes of freshness running out does not put the network into a warm run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import clean_environment, measure
from inputs import INPUTS, local_indexes

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", choices=sorted(INPUTS), default="kv")
    parser.add_argument("--phase", choices=("cold", "new", "existing"), default="cold")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--base", default="HEAD", help="the revision B is compared with (default: HEAD)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cuda-constraints-ab-"))
    try:
        trees = {"A": work / "A", "B": ROOT}
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(trees["A"]), args.base], check=True)
        source = INPUTS[args.input]
        with local_indexes() if source.local else contextlib.nullcontext() as served:
            project = source.project(work / "project", served)
            cache = work / "cache"
            if args.phase != "cold":
                compile_with(trees["B"], project, work / "fill", cache, work)  # fills the cache, and the files
            seconds: dict[str, list[float]] = {"A": [], "B": []}
            for n in range(args.runs + 1):  # the first round compiles bytecode and is not counted
                for name, tree in trees.items():
                    output = work / "fill" if args.phase == "existing" else work / f"{name}-{n}"
                    run_cache = work / f"cache-{name}-{n}" if args.phase == "cold" else cache
                    took = compile_with(tree, project, output, run_cache, work, offline=args.phase != "cold", name=name)
                    if n:
                        seconds[name].append(took)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "A")], check=False)
        shutil.rmtree(work, ignore_errors=True)
    for name, tree in (("A", args.base), ("B", "working tree")):
        runs = sorted(seconds[name])
        print(f"{name} ({tree}): median {statistics.median(runs):.3f} s, min {runs[0]:.3f} s; " + " ".join(f"{s:.2f}" for s in runs))
    return 0


def compile_with(tree: Path, project: Path, output: Path, cache: Path, work: Path, offline: bool = False, name: str = "B") -> float:
    command = [sys.executable, "-m", "resolver", "compile", "-q", "-o", str(output), "--cache-dir", str(cache)]
    command += ["--offline"] if offline else []
    environment = {**clean_environment(), "PYTHONPATH": str(tree), "PYTHONPYCACHEPREFIX": str(work / f"pycache-{name}")}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    seconds, _, _ = measure(command, cwd=project, environment=environment, sample=False)
    return seconds


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
