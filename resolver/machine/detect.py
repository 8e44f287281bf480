"""`detect`: the CUDA major of a machine, from probes in order of authority.

1. `CUDA_CONSTRAINTS_CUDA_MAJOR` overrides everything.
2. torch in the target interpreter: `torch.version.cuda` gives the major, `torch.version.hip` means ROCm,
   neither means a CPU build, which decides even when a CUDA toolkit is installed.
3. Without torch: `CUDA_VERSION` (NVIDIA's images set it), `nvcc --version`, the `libcudart.so.N` the
   dynamic loader finds, and last the driver, as an upper bound (the newest major it can run).

The first probe that answers decides; the others that disagree become warnings. Reading each answer is a
pure function of text; `probe_machine` is the only part that asks the machine, through a `Machine`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import NoCudaDetected, UsageError
from ..model.targets import MAJORS
from .interpreter import TorchReport, torch_report
from .system import Machine, SystemMachine

OVERRIDE = "CUDA_CONSTRAINTS_CUDA_MAJOR"
DRIVER_VERSION_FILE = "/proc/driver/nvidia/version"
# Searched after PATH for `ldconfig`, which most users do not have on PATH.
SYSTEM_BIN_DIRS = ("/sbin", "/usr/sbin")
# The oldest Linux driver (major version) each CUDA major runs on, newest first (NVIDIA's CUDA release
# notes, "minor version compatibility": 13.x needs >= 580, 12.x >= 525, 11.x >= 450, 10.x >= 410).
DRIVER_MINIMUMS = ((580, 13), (525, 12), (450, 11), (410, 10))

Kind = Literal["cuda", "rocm", "cpu"]
_MAJOR = re.compile(r"^\s*(\d{2})(?:\.\d+)*\s*$")
_NVCC_RELEASE = re.compile(r"release (\d+)\.(\d+)")
_LIBCUDART = re.compile(r"\blibcudart\.so\.(\d+)\b")
_DRIVER = re.compile(r"(?:Kernel Module|NVRM version:).*?\s(\d{3,})\.(\d+)(?:\.\d+)?\s")


@dataclass(frozen=True)
class Probe:
    """One probe's answer: `kind` and `major` when it found something, `detail` either way."""

    name: str
    source: str
    detail: str
    kind: Kind | None = None
    major: int | None = None
    upper_bound: bool = False
    # torch that `cuda-constraints install` put there: it says what was installed, not what the machine is.
    installed_by_us: bool = False

    @property
    def answered(self) -> bool:
        return self.kind is not None

    @property
    def answer(self) -> str | None:
        if self.kind == "cuda":
            return str(self.major)
        return self.kind

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "source": self.source,
            "answer": self.answer,
            "cuda_major": self.major,
            "upper_bound": self.upper_bound,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Detection:
    python: str
    probes: tuple[Probe, ...]
    decided_by: Probe | None
    warnings: tuple[str, ...]

    @property
    def kind(self) -> Kind | None:
        return self.decided_by.kind if self.decided_by else None

    @property
    def major(self) -> int | None:
        return self.decided_by.major if self.decided_by else None

    @property
    def answer(self) -> str | None:
        return self.decided_by.answer if self.decided_by else None

    def describe(self) -> str:
        """Which probe decided and why: `torch: torch 2.9.0+cu130: torch.version.cuda = '13.0'`."""
        if self.decided_by is None:
            return "nothing detected"
        return f"{self.decided_by.name}: {self.decided_by.detail}"

    def to_json(self) -> dict[str, object]:
        return {
            "answer": self.answer,
            "cuda_major": self.major,
            "decided_by": self.decided_by.name if self.decided_by else None,
            "python": self.python,
            "probes": [probe.to_json() for probe in self.probes],
            "warnings": list(self.warnings),
        }


# -- reading answers (pure) -----------------------------------------------------------------------------------


def override_probe(value: str | None) -> Probe:
    source = f"${OVERRIDE}"
    if value is None or not value.strip():
        return Probe("override", source, "not set")
    text = value.strip().lower()
    if text in ("rocm", "cpu"):
        return Probe("override", source, f"{OVERRIDE}={value}", kind=text)  # type: ignore[arg-type]
    match = _MAJOR.match(text)
    if not match or int(match.group(1)) not in MAJORS:
        raise UsageError(f"{OVERRIDE}={value!r}: give a CUDA major such as 13 ({MAJORS.start} to {MAJORS.stop - 1}; or rocm, or cpu)")
    return Probe("override", source, f"{OVERRIDE}={value}", kind="cuda", major=int(match.group(1)))


def torch_probe(report: TorchReport, python: str) -> Probe:
    if not report.installed:
        detail = f"cannot ask {python}: {report.error}" if report.error else f"torch is not installed in {python}"
        return Probe("torch", python, detail)
    release = f"torch {report.version}" if report.version else "torch"
    if report.cuda:
        match = _MAJOR.match(report.cuda)
        if match:
            ours = report.installed_for is not None
            detail = f"{release}: torch.version.cuda = {report.cuda!r}" + (
                f", installed by `cuda-constraints install` for CUDA {report.installed_for}" if ours else ""
            )
            return Probe("torch", python, detail, kind="cuda", major=int(match.group(1)), installed_by_us=ours)
        return Probe("torch", python, f"{release}: cannot read torch.version.cuda = {report.cuda!r}")
    if report.hip:
        return Probe("torch", python, f"{release}: torch.version.hip = {report.hip!r} (a ROCm build)", kind="rocm")
    if report.error:
        return Probe("torch", python, f"{release}: cannot read torch.version ({report.error})")
    return Probe("torch", python, f"{release} is a CPU build (torch.version.cuda and torch.version.hip are None)", kind="cpu")


def cuda_version_probe(value: str | None) -> Probe:
    if value is None or not value.strip():
        return Probe("CUDA_VERSION", "$CUDA_VERSION", "not set")
    match = re.match(r"^\s*(\d+)\.", value + ".")
    if not match or not 10 <= int(match.group(1)) <= 99:
        return Probe("CUDA_VERSION", "$CUDA_VERSION", f"cannot read CUDA_VERSION={value!r}")
    return Probe("CUDA_VERSION", "$CUDA_VERSION", f"CUDA_VERSION={value}", kind="cuda", major=int(match.group(1)))


def nvcc_probe(path: str | None, output: str | None) -> Probe:
    if path is None:
        return Probe("nvcc", "nvcc", "not on PATH")
    match = _NVCC_RELEASE.search(output or "")
    if not match:
        return Probe("nvcc", path, "`nvcc --version` gave no 'release N.M'")
    return Probe("nvcc", path, f"release {match.group(1)}.{match.group(2)}", kind="cuda", major=int(match.group(1)))


def libcudart_probe(source: str, loader_listing: str, library_names: Sequence[str] = ()) -> Probe:
    """`ldconfig -p` output, plus the file names in LD_LIBRARY_PATH directories."""
    majors = {int(m) for m in _LIBCUDART.findall(loader_listing)}
    majors |= {int(m) for name in library_names for m in _LIBCUDART.findall(name)}
    if not majors:
        return Probe("libcudart", source, "the loader finds no libcudart.so.N")
    found = ", ".join(f"libcudart.so.{m}" for m in sorted(majors))
    newest = max(majors)
    detail = found if len(majors) == 1 else f"{found} (the newest decides)"
    return Probe("libcudart", source, detail, kind="cuda", major=newest)


def driver_major(driver_version: str) -> int | None:
    """The newest CUDA major a driver (`580.65.06`) runs."""
    match = re.match(r"^\s*(\d+)", driver_version)
    if not match:
        return None
    major = int(match.group(1))
    return next((cuda for minimum, cuda in DRIVER_MINIMUMS if major >= minimum), None)


def driver_probe(source: str, driver_version: str | None) -> Probe:
    if driver_version is None:
        return Probe("driver", source, "no NVIDIA driver found")
    cuda = driver_major(driver_version)
    if cuda is None:
        return Probe("driver", source, f"driver {driver_version} is older than any supported CUDA major")
    detail = f"driver {driver_version} runs CUDA {cuda} and older"
    return Probe("driver", source, detail, kind="cuda", major=cuda, upper_bound=True)


def driver_version_from_proc(text: str | None) -> str | None:
    match = _DRIVER.search(text or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def driver_version_from_smi(output: str | None) -> str | None:
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    return lines[0] if lines and re.match(r"^\d+\.\d+", lines[0]) else None


def decide(python: str, probes: Sequence[Probe]) -> Detection:
    """The first probe that answered decides; the others that disagree with it become warnings. A torch
    that `install` itself put there yields to the machine (toolkit, libcudart) when that names another
    major: after a CUDA upgrade of the image, a cached environment must not keep the old major."""
    decided = next((probe for probe in probes if probe.answered), None)
    warnings: list[str] = []
    if decided is not None and decided.installed_by_us:
        machine = next((p for p in probes if p.kind == "cuda" and not p.upper_bound and p.name not in ("override", "torch")), None)
        if machine is not None and machine.major != decided.major:
            warnings.append(
                f"torch here was installed by `cuda-constraints install` for CUDA {decided.major} ({decided.detail}), but "
                f"{machine.name} says CUDA {machine.major} ({machine.detail}): the machine decides; "
                f"`cuda-constraints install` replaces the CUDA {decided.major} packages (with --fix)"
            )
            decided = machine
    if decided is not None:
        for probe in probes:
            if probe is decided or probe.major is None:
                continue
            warning = _disagreement(decided, probe)
            if warning:
                warnings.append(warning)
    return Detection(python, tuple(probes), decided, tuple(warnings))


def _disagreement(decided: Probe, other: Probe) -> str | None:
    if other.upper_bound:
        if decided.kind == "cuda" and decided.major is not None and other.major is not None and other.major < decided.major:
            return (
                f"{decided.name} says CUDA {decided.major}, but the {other.detail}; CUDA {decided.major} "
                "programs will not start until the driver is updated"
            )
        return None
    if decided.kind == "cuda" and other.major == decided.major:
        return None
    decided_text = f"CUDA {decided.major}" if decided.kind == "cuda" else decided.kind
    return f"{other.name} says CUDA {other.major} ({other.detail}), but {decided.name} decides: {decided_text}"


def require_installable(detection: Detection, rocm_configured: bool) -> None:
    """Raise NoCudaDetected unless the detection names a CUDA major (or ROCm, when configured)."""
    decided = detection.decided_by
    if decided is None:
        tried = "; ".join(f"{probe.name}: {probe.detail}" for probe in detection.probes)
        raise NoCudaDetected(
            f"no CUDA found. Tried {tried}. On a GPU image, install a CUDA build of torch first or set "
            f"{OVERRIDE}=<major>; `cuda-constraints install --cuda N` installs for a major anyway."
        )
    if decided.kind == "cpu":
        raise NoCudaDetected(
            f"no CUDA: {decided.detail} (decided by {decided.name}). The CUDA packages would not load here; "
            f"install a CUDA build of torch, or set {OVERRIDE}=<major> / pass --cuda N to install for a major anyway."
        )
    if decided.kind == "rocm" and not rocm_configured:
        raise NoCudaDetected(
            f"ROCm, not CUDA: {decided.detail}. Set `rocm-requirements` in [tool.cuda-constraints] to the "
            "requirements file to install on ROCm images, or pass --cuda N to install for a CUDA major anyway."
        )


def host_has_driver(machine: Machine, loader_cache: Mapping[str, object]) -> bool:
    """Whether the NVIDIA driver is on this host: its version file, or `libcuda.so.1` in the loader's cache."""
    return machine.read_text(DRIVER_VERSION_FILE) is not None or "libcuda.so.1" in loader_cache


# -- asking the machine ---------------------------------------------------------------------------------------


def system_machine() -> SystemMachine:
    """The real machine, with `ldconfig`'s usual directories searched after PATH."""
    return SystemMachine(dict(os.environ), SYSTEM_BIN_DIRS)


def probe_machine(machine: Machine, python: str, driver_file: str | None = None) -> Detection:
    """Run every probe (cheap ones all; torch reads a file in a subprocess) and decide."""
    environ = machine.environ
    probes = [
        override_probe(environ.get(OVERRIDE)),
        torch_probe(torch_report(machine, python), python),
        cuda_version_probe(environ.get("CUDA_VERSION")),
        _nvcc(machine),
        _libcudart(machine),
        _driver(machine, driver_file or DRIVER_VERSION_FILE),
    ]
    return decide(python, probes)


def _nvcc(machine: Machine) -> Probe:
    path = machine.which("nvcc")
    if path is None:
        return nvcc_probe(None, None)
    result = machine.run([path, "--version"], timeout=30)
    if result is not None and result.returncode != 0:
        return Probe("nvcc", path, f"`nvcc --version` failed: {result.last_error_line}")
    return nvcc_probe(path, result.stdout if result else None)


def _libcudart(machine: Machine) -> Probe:
    directories = [d for d in machine.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    names = [name for directory in directories for name in machine.list_dir(directory) if name.startswith("libcudart.so.")]
    ldconfig = machine.which("ldconfig")
    listing = ""
    if ldconfig is not None:
        result = machine.run([ldconfig, "-p"], timeout=30)
        listing = result.stdout if result and result.returncode == 0 else ""
    sources = [f"{ldconfig} -p" if ldconfig else "ldconfig (not found)"] + (["LD_LIBRARY_PATH"] if directories else [])
    return libcudart_probe(", ".join(sources), listing, names)


def _driver(machine: Machine, driver_file: str) -> Probe:
    version = driver_version_from_proc(machine.read_text(driver_file))
    if version is not None:
        return driver_probe(driver_file, version)
    smi = machine.which("nvidia-smi")
    if smi is None:
        return driver_probe(f"{driver_file}, nvidia-smi", None)
    result = machine.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], timeout=30)
    version = driver_version_from_smi(result.stdout if result and result.returncode == 0 else None)
    if version is None and result is not None and result.returncode != 0:
        return Probe("driver", smi, f"nvidia-smi failed: {result.last_error_line}")
    return driver_probe(smi, version)
