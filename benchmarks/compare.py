"""Side by side, in one run, on the real index: our compile against uv and pip-compile.

    python benchmarks/compare.py [--quick] [--index-url URL] [--keep]

1. `cuda-constraints compile` of every configured CUDA major and platform, cold (empty cache), then
   warm (cache full, index unchanged, files present);
2. `uv pip compile` of one target (CUDA 13, x86_64, Python 3.12) with a hand-written excludes file, cold;
3. `pip-compile` of the same target, cold (pip-tools resolves for the interpreter it runs in: Python
   3.12 when one is on PATH, on this machine's platform).

Each tool is installed into its own temporary virtual environment first (not timed). For each run:
wall time, requests made, bytes downloaded, peak RSS, and how many packages of the wrong CUDA major its
output contains. The human table comes first; the last line of stdout is one JSON object with the figures.

Requests and bytes: ours from its own counters (`--stats-json`); uv's requests from its debug log; bytes
of the peers from the network interface's receive counter (the machine must be otherwise quiet).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resolver.files.constraints import parse  # noqa: E402
from resolver.model.families import FamilyTable  # noqa: E402

FULL_INPUT = ROOT / "requirements" / "kv_connectors.txt"
QUICK_INPUT = "cupy-cuda13x != 14.1.0\nmooncake-transfer-engine >= 0.3.12\nnixl >= 1.1.0\n"
# What a CI maintainer writes by hand today for "CUDA 13": the CUDA 13 names, and nixl's other member out.
HAND_SWAPS = {"mooncake-transfer-engine": "mooncake-transfer-engine-cuda13"}
HAND_EXCLUDES = "nixl-cu12\n"
TARGET_MAJOR = 13
DEFAULT_INDEX = "https://pypi.org/simple"


@dataclass
class Run:
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
    parser.add_argument("--quick", action="store_true", help="a smaller input (cupy, mooncake, nixl)")
    parser.add_argument("--index-url", default=DEFAULT_INDEX)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--skip-peers", action="store_true", help="only our compile (cold and warm)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cuda-constraints-bench-"))
    try:
        runs = benchmark(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(runs)
    print(json.dumps(summary(runs, args)))
    return 0


def benchmark(work: Path, args: argparse.Namespace) -> list[Run]:
    requirements = work / "requirements.txt"
    requirements.write_text(QUICK_INPUT if args.quick else FULL_INPUT.read_text())
    print(f"installing the tools into {work} …", file=sys.stderr)
    ours = venv(work / "ours", sys.executable, [str(ROOT)]) / "cuda-constraints"
    runs = [
        run_ours(ours, requirements, work, args.index_url, "cold"),
        run_ours(ours, requirements, work, args.index_url, "warm"),
    ]
    if args.skip_peers:
        return runs
    single_target = work / "requirements-cu13.txt"
    single_target.write_text(hand_swapped(requirements.read_text()))
    excludes = work / "excludes-cu13.txt"
    excludes.write_text(HAND_EXCLUDES)
    uv = venv(work / "uv", sys.executable, ["uv"]) / "uv"
    runs.append(run_uv(uv, single_target, excludes, work, args.index_url))
    pip_compile = venv(work / "pip-tools", python_312(), ["pip", "pip-tools"]) / "pip-compile"
    runs.append(run_pip_compile(pip_compile, single_target, work, args.index_url))
    return runs


def python_312() -> str:
    """An interpreter of the target Python for pip-compile, which resolves for the one it runs in."""
    candidates = [shutil.which("python3.12"), *sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import venv"], capture_output=True)
        if probe.returncode == 0:
            return candidate
    return sys.executable


def venv(path: Path, python: str, packages: list[str]) -> Path:
    subprocess.run([python, "-m", "venv", str(path)], check=True)
    subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", *packages], check=True)
    return path / "bin"


def run_ours(executable: Path, requirements: Path, work: Path, index_url: str, phase: str) -> Run:
    stats = work / f"ours-{phase}.json"
    command = [
        str(executable), "compile", "-r", str(requirements), "-o", str(work / "constraints"),
        "--cache-dir", str(work / "cache"), "--index-url", index_url, "-q", "--stats-json", str(stats),
    ]
    seconds, rss, _ = measure(command, cwd=ROOT)
    figures = json.loads(stats.read_text())
    files = sorted((work / "constraints").glob("cu*.txt"))
    wrong = sum(wrong_major_in_file(path) for path in files)
    packages = sum(len(parse(path.read_text(), str(path)).pins) for path in files)
    reads = sum(figures["metadata_reads"].values())
    note = f"{len(files)} majors x platforms; {reads} metadata reads, {figures['metadata_bytes_per_read'] / 1024:.0f} KiB each"
    return Run(
        "cuda-constraints", f"compile, all majors/platforms, {phase}", seconds, figures["requests"],
        figures["bytes"] / 1e6, rss, packages, wrong, note,
    )


def run_uv(uv: Path, requirements: Path, excludes: Path, work: Path, index_url: str) -> Run:
    output = work / "uv-cu13.txt"
    command = [
        str(uv), "pip", "compile", str(requirements), "--excludes", str(excludes), "--python-version", "3.12",
        "--python-platform", "x86_64-manylinux_2_28", "--index-url", index_url, "--cache-dir", str(work / "uv-cache"),
        "--no-header", "-q", "-o", str(output),
    ]
    environment = {**os.environ, "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "RUST_LOG": "uv_client=debug"}
    received = interface_bytes()
    seconds, rss, log = measure(command, environment=environment)
    downloaded = interface_bytes() - received if received is not None else None
    requests = len(re.findall(r"Sending (?:fresh|revalidation) \w+ request", log)) or None
    pins = read_pins(output)
    return Run(
        "uv", "pip compile, CUDA 13 x86_64 cp312, cold", seconds, requests,
        downloaded / 1e6 if downloaded is not None else None, rss, len(pins), count_wrong(pins),
        "hand-written excludes: nixl-cu12",
    )


def run_pip_compile(pip_compile: Path, requirements: Path, work: Path, index_url: str) -> Run:
    output = work / "pip-compile-cu13.txt"
    command = [
        str(pip_compile), str(requirements), "--index-url", index_url, "--cache-dir", str(work / "pip-cache"),
        "--no-header", "--strip-extras", "-q", "-o", str(output),
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    received = interface_bytes()
    seconds, rss, _ = measure(command, environment=environment)
    downloaded = interface_bytes() - received if received is not None else None
    pins = read_pins(output)
    python = subprocess.run([str(pip_compile.parent / "python"), "-c", "import sys; print(sys.version.split()[0])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    return Run(
        "pip-compile", f"CUDA 13 requirements, cp{python.replace('.', '')[:3]} {platform.machine()}, cold", seconds,
        None, downloaded / 1e6 if downloaded is not None else None, rss, len(pins), count_wrong(pins),
        "cannot exclude: the meta package's other member stays",
    )


def measure(command: list[str], cwd: Path | None = None, environment: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of the process (from wait4, so of this one child), and its stderr."""
    with tempfile.TemporaryFile("w+") as errors:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read()
    if process.returncode:
        raise SystemExit(f"{command[0]} failed ({process.returncode}):\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, stderr


def interface_bytes() -> int | None:
    """Bytes received by the network interfaces (not loopback) so far."""
    try:
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    return sum(int(line.split(":", 1)[1].split()[0]) for line in lines if not line.strip().startswith("lo:"))


def hand_swapped(text: str) -> str:
    for original, replacement in HAND_SWAPS.items():
        text = re.sub(rf"^{re.escape(original)}\b", replacement, text, flags=re.MULTILINE)
    return text


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def count_wrong(pins: dict[str, str], major: int = TARGET_MAJOR) -> int:
    from packaging.version import Version

    families = FamilyTable()
    return sum(1 for name, version in pins.items() if families.major_of(name, Version(version)) not in (None, major))


def wrong_major_in_file(path: Path) -> int:
    document = parse(path.read_text(), str(path))
    families = FamilyTable()
    return sum(1 for pin in document.pins if families.major_of(pin.name, pin.version) not in (None, document.cuda_major))


def print_table(runs: list[Run]) -> None:
    header = f"{'tool':<17} {'run':<44} {'seconds':>8} {'requests':>9} {'MB':>8} {'peak RSS MB':>12} {'pins':>5} {'wrong major':>12}"
    print(header)
    print("-" * len(header))
    for run in runs:
        requests = str(run.requests) if run.requests is not None else "n/a"
        megabytes = f"{run.megabytes:.1f}" if run.megabytes is not None else "n/a"
        print(
            f"{run.tool:<17} {run.what:<44} {run.seconds:>8.1f} {requests:>9} {megabytes:>8} {run.peak_rss_mb:>12.0f} "
            f"{run.packages if run.packages is not None else 'n/a':>5} {run.wrong_major if run.wrong_major is not None else 'n/a':>12}"
        )
        if run.note:
            print(f"{'':<17} {run.note}")


def summary(runs: list[Run], args: argparse.Namespace) -> dict[str, object]:
    by_key = {(r.tool, r.what.rsplit(", ", 1)[-1]): r for r in runs}
    cold, warm = by_key.get(("cuda-constraints", "cold")), by_key.get(("cuda-constraints", "warm"))
    uv = next((r for r in runs if r.tool == "uv"), None)
    return {
        "input": "quick" if args.quick else "requirements/kv_connectors.txt",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": [asdict(r) for r in runs],
        "cold_faster_than_uv_single_target": bool(cold and uv and cold.seconds < uv.seconds),
        "warm_over_cold": round(warm.seconds / cold.seconds, 3) if cold and warm else None,
        "peak_rss_mb": max((r.peak_rss_mb for r in runs if r.tool == "cuda-constraints"), default=None),
    }


if __name__ == "__main__":
    sys.exit(main())
