"""Side by side, in one run: our compile against uv (and pip-compile), on real projects' inputs.

    python benchmarks/compare.py [--input kv|vllm|sglang|pytorch-local ...] [--runs 3] [--with-pip-compile]

Inputs (benchmarks/inputs.py says where each comes from):
- `kv`: this repository's requirements/kv_connectors.txt and configuration (CUDA 12 and 13, x86_64 and
  aarch64, manylinux_2_28);
- `vllm`: vLLM 0.33.0's requirements/cuda.txt (with common.txt) and kv_connectors.txt, from its sdist
  (tests/data/vllm-0.33.0), CUDA 13 on manylinux_2_34, with vLLM's own exclude-dependencies;
- `sglang`: sglang 0.5.23's dependencies, from its wheel's METADATA (tests/data/sglang-0.5.23), CUDA 13
  on manylinux_2_34;
- `pytorch-local`: a vLLM-shaped input (torch==2.14.0 and the KV set) against two indexes on 127.0.0.1,
  a PyPI-style one and a PyTorch-style one (HTML only, +cu129/+cu130 builds), CUDA 12 and 13.

For each input, `--runs` times (the median is reported): our `compile` of every major and platform cold
(empty cache), warm into a new output directory (cache full), and warm with the existing files; `uv pip
compile` of one target (CUDA 13, x86_64, Python 3.12: the CUDA 13 names and excludes written by hand),
cold and warm; pip-compile cold with `--with-pip-compile` (it downloads gigabytes). Each tool is installed
into its own virtual environment first (not timed). Figures: wall time, requests, megabytes, peak RSS
(of the process and its children together, sampled every 10 ms), pins, packages of the wrong CUDA
major; ours also metadata reads and bytes per read. A table per input; the last line of stdout is one
JSON object with everything.

Requests and bytes: ours from its own counters (`--stats-json`); uv's requests from its debug log; the
peers' bytes from the network interface's receive counter (the machine must be otherwise quiet).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.inputs import INPUTS, Input, local_indexes  # noqa: E402
from resolver.files.constraints import parse  # noqa: E402
from resolver.model.families import FamilyTable  # noqa: E402


@dataclass
class Run:
    input: str
    tool: str
    what: str
    seconds: float
    requests: int | None
    megabytes: float | None
    peak_rss_mb: float
    packages: int | None
    wrong_major: int | None
    note: str = ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", action="append", choices=sorted(INPUTS), help="repeatable (default: every input)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement; the median is reported")
    parser.add_argument("--with-pip-compile", action="store_true", help="also pip-compile, cold (slow)")
    parser.add_argument("--skip-peers", action="store_true", help="only our compile")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cuda-constraints-bench-"))
    try:
        tools = install_tools(work, args)
        runs = [run for name in args.input or list(INPUTS) for run in benchmark(INPUTS[name], tools, work / name, args)]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_tables(runs)
    print(json.dumps(summary(runs)))
    return 0


def install_tools(work: Path, args: argparse.Namespace) -> dict[str, Path]:
    print(f"installing the tools into {work} …", file=sys.stderr)
    tools = {"ours": venv(work / "ours", sys.executable, [str(ROOT)]) / "cuda-constraints"}
    if not args.skip_peers:
        tools["uv"] = venv(work / "uv", sys.executable, ["uv"]) / "uv"
    if args.with_pip_compile:
        tools["pip-compile"] = venv(work / "pip-tools", python_312(), ["pip", "pip-tools"]) / "pip-compile"
    return tools


def benchmark(source: Input, tools: dict[str, Path], work: Path, args: argparse.Namespace) -> list[Run]:
    with local_indexes() if source.local else contextlib.nullcontext() as served:
        project = source.project(work / "project", served)
        ours = tools["ours"]
        runs = [
            median(source.name, [run_ours(ours, project, work / f"cold-{n}", "cold") for n in range(args.runs)]),
        ]
        cache = work / "cache-warm"
        run_ours(ours, project, work / "fill", "fill", cache)
        runs.append(median(source.name, [run_ours(ours, project, work / f"new-{n}", "warm, new output directory", cache) for n in range(args.runs)]))
        runs.append(median(source.name, [run_ours(ours, project, work / "fill", "warm, existing files", cache) for _ in range(args.runs)]))
        if "uv" in tools:
            target = source.single_target(work, served)
            runs.append(median(source.name, [run_uv(tools["uv"], target, work / f"uv-{n}", "cold") for n in range(args.runs)]))
            runs.append(median(source.name, [run_uv(tools["uv"], target, work / "uv-warm", "warm") for _ in range(args.runs + 1)][1:]))
        if "pip-compile" in tools and not source.local:
            runs.append(run_pip_compile(tools["pip-compile"], source.single_target(work, served), work / "pip-compile"))
    return runs


def median(name: str, runs: list[Run]) -> Run:
    """The run of median wall time, with the median of each figure."""
    chosen = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
    rss = statistics.median(r.peak_rss_mb for r in runs)
    note = chosen.note + (f"; median of {len(runs)}: {', '.join(f'{r.seconds:.1f}' for r in sorted(runs, key=lambda r: r.seconds))} s"
                          if len(runs) > 1 else "")
    return replace(chosen, input=name, peak_rss_mb=rss, note=note)


def python_312() -> str:
    """An interpreter of the target Python for pip-compile, which resolves for the one it runs in."""
    for candidate in filter(None, [shutil.which("python3.12")]):
        if subprocess.run([candidate, "-c", "import venv"], capture_output=True).returncode == 0:
            return candidate
    return sys.executable


def venv(path: Path, python: str, packages: list[str]) -> Path:
    subprocess.run([python, "-m", "venv", str(path)], check=True)
    subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", *packages], check=True)
    return path / "bin"


def run_ours(executable: Path, project: Path, work: Path, phase: str, cache: Path | None = None) -> Run:
    work.mkdir(parents=True, exist_ok=True)
    stats = work / "stats.json"
    output = work / "constraints"
    command = [str(executable), "compile", "-o", str(output), "--cache-dir", str(cache or work / "cache"), "-q", "--stats-json", str(stats)]
    seconds, rss, _ = measure(command, cwd=project, environment=clean_environment())
    figures = json.loads(stats.read_text())
    files = sorted(output.glob("cu*.txt"))
    wrong = sum(wrong_major_in_file(path) for path in files)
    packages = sum(len(parse(path.read_text(), str(path)).pins) for path in files)
    reads = sum(figures["metadata_reads"].values())
    per_read = figures["metadata_bytes_per_read"] / 1024
    note = f"{len(files)} majors; {reads} metadata reads" + (f", {per_read:.0f} KiB each" if reads else "")
    return Run("", "cuda-constraints", f"compile, every major x platform, {phase}", seconds, figures["requests"],
               figures["bytes"] / 1e6, rss, packages, wrong, note)


def run_uv(uv: Path, target: list[str], work: Path, phase: str) -> Run:
    work.mkdir(parents=True, exist_ok=True)
    output = work / "uv.txt"
    command = [str(uv), "pip", "compile", *target, "--cache-dir", str(work / "uv-cache"),
               "--no-header", "-q", "-o", str(output)]
    environment = {**clean_environment(), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "RUST_LOG": "uv_client=debug"}
    with received() as downloaded:
        seconds, rss, log = measure(command, environment=environment)
    requests = len(re.findall(r"Sending (?:fresh|revalidation) \w+ request", log))
    pins = read_pins(output)
    python = target[target.index("--python-version") + 1].replace(".", "")
    return Run("", "uv", f"pip compile, CUDA 13 x86_64 cp{python}, {phase}", seconds, requests, downloaded.megabytes, rss, len(pins),
               count_wrong(pins), "hand-written CUDA 13 names and excludes")


def run_pip_compile(pip_compile: Path, target: list[str], work: Path) -> Run:
    work.mkdir(parents=True, exist_ok=True)
    output = work / "pip-compile.txt"
    requirements = [word for word in target if word.endswith(".txt")]
    command = [str(pip_compile), *requirements, "--cache-dir", str(work / "pip-cache"), "--no-header", "--strip-extras", "-q", "-o", str(output)]
    environment = {k: v for k, v in clean_environment().items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    with received() as downloaded:
        seconds, rss, _ = measure(command, environment=environment)
    pins = read_pins(output)
    return Run("", "pip-compile", f"CUDA 13 requirements, {platform.machine()}, cold", seconds, None, downloaded.megabytes, rss,
               len(pins), count_wrong(pins), "cannot exclude: the meta package's other member stays")


def clean_environment() -> dict[str, str]:
    """This machine's environment without its index and find-links settings (the inputs name their indexes)."""
    return {k: v for k, v in os.environ.items() if not re.match(r"^(PIP|UV)_(INDEX|EXTRA_INDEX|DEFAULT_INDEX|FIND_LINKS)", k)}


def measure(
    command: list[str], cwd: Path | None = None, environment: dict[str, str] | None = None, sample: bool = True
) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stderr of a command. The RSS is of the process and its children
    together (our page worker counts with the tool), sampled every 50 ms, and at least wait4's peak;
    without `sample`, wait4's peak alone (sampling takes CPU from the command on a 2-core machine)."""
    with tempfile.TemporaryFile("w+") as errors:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        together = 0.0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG if sample else 0)
            if pid:
                break
            together = max(together, tree_rss_mb(process.pid))
            time.sleep(0.05)
        seconds = time.monotonic() - started
        errors.seek(0)
        stderr = errors.read()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{command[0]} failed:\n{stderr[-3000:]}")
    return seconds, max(usage.ru_maxrss / 1024, together), stderr


def tree_rss_mb(pid: int) -> float:
    """The resident memory of a process and its children now, in MB (0 where /proc does not say)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()]
    total = 0
    for each in pids:
        with contextlib.suppress(OSError):
            found = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{each}/status").read_text(), re.MULTILINE)
            total += int(found.group(1)) if found else 0
    return total / 1024


class _Received:
    megabytes: float | None = None


@contextlib.contextmanager
def received() -> Iterator[_Received]:
    """Megabytes the network interfaces (not loopback) received meanwhile."""
    found = _Received()
    before = interface_bytes()
    yield found
    after = interface_bytes()
    found.megabytes = (after - before) / 1e6 if before is not None and after is not None else None


def interface_bytes() -> int | None:
    try:
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    return sum(int(line.split(":", 1)[1].split()[0]) for line in lines if not line.strip().startswith("lo:"))


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def count_wrong(pins: dict[str, str], major: int = 13) -> int:
    from packaging.version import Version

    families = FamilyTable()
    return sum(1 for name, version in pins.items() if families.major_of(name, Version(version)) not in (None, major))


def wrong_major_in_file(path: Path) -> int:
    document = parse(path.read_text(), str(path))
    families = FamilyTable()
    return sum(1 for pin in document.pins if families.major_of(pin.name, pin.version) not in (None, document.cuda_major))


def print_tables(runs: list[Run]) -> None:
    for name in dict.fromkeys(r.input for r in runs):
        print(f"\n{name}")
        header = f"{'tool':<17} {'run':<56} {'seconds':>8} {'requests':>9} {'MB':>8} {'peak RSS MB':>12} {'pins':>5} {'wrong':>6}"
        print(header)
        print("-" * len(header))
        for run in (r for r in runs if r.input == name):
            requests = str(run.requests) if run.requests is not None else "n/a"
            megabytes = f"{run.megabytes:.1f}" if run.megabytes is not None else "n/a"
            print(f"{run.tool:<17} {run.what:<56} {run.seconds:>8.1f} {requests:>9} {megabytes:>8} {run.peak_rss_mb:>12.0f} "
                  f"{run.packages if run.packages is not None else 'n/a':>5} {run.wrong_major if run.wrong_major is not None else 'n/a':>6}")
            if run.note:
                print(f"{'':<17} {run.note}")


def summary(runs: list[Run]) -> dict[str, object]:
    targets = {}
    for name in dict.fromkeys(r.input for r in runs):
        mine = {r.what.rsplit(", ", 1)[-1] if "new output" not in r.what else "new": r for r in runs if r.input == name and r.tool == "cuda-constraints"}
        uv = next((r for r in runs if r.input == name and r.tool == "uv" and r.what.endswith("cold")), None)
        cold, new, existing = mine.get("cold"), mine.get("new"), mine.get("existing files")
        targets[name] = {
            "cold_over_uv": round(cold.seconds / uv.seconds, 2) if cold and uv else None,
            "warm_new_over_cold": round(new.seconds / cold.seconds, 2) if cold and new else None,
            "warm_existing_seconds": round(existing.seconds, 2) if existing else None,
            "peak_rss_mb": max((r.peak_rss_mb for r in mine.values()), default=None),
        }
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": [asdict(r) for r in runs],
        "targets": targets,
    }


if __name__ == "__main__":
    sys.exit(main())
