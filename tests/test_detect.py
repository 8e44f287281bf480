"""`detect`: reading each probe's answer (pure), deciding between them, and the command on a faked machine
(fake `torch` packages on the interpreter's PYTHONPATH, `nvcc`/`ldconfig`/`nvidia-smi` scripts on PATH,
a fake driver file). This machine's own CUDA toolkit never shows: PATH and the system directories are
replaced in every test.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from resolver.cli.main import main
from resolver.errors import NoCudaDetected, UsageError
from resolver.machine import detect
from resolver.machine.detect import (
    Probe,
    cuda_version_probe,
    decide,
    driver_major,
    driver_probe,
    driver_version_from_proc,
    driver_version_from_smi,
    libcudart_probe,
    nvcc_probe,
    override_probe,
    require_installable,
    torch_probe,
)
from resolver.machine.interpreter import TorchReport

NVCC_12 = """\
nvcc: NVIDIA (R) Cuda compiler driver
Copyright (c) 2005-2024 NVIDIA Corporation
Built on Tue_Oct_29_23:50:19_PDT_2024
Cuda compilation tools, release 12.6, V12.6.85
Build cuda_12.6.r12.6/compiler.35059454_0"""
NVCC_13 = NVCC_12.replace("release 12.6, V12.6.85", "release 13.0, V13.0.88")
LDCONFIG_13 = """\
3 libs found in cache `/etc/ld.so.cache'
\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so.13
\tlibcudart.so (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so
\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6"""
PROC_580 = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  "
    "(dvs-builder@U16-I3-B03-4-3)  Tue Jul 22 23:09:05 UTC 2025\nGCC version:  gcc version 12.3.0\n"
)
PROC_535 = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\n"


# -- reading answers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "answer"), [(None, None), ("", None), ("13", "13"), (" 12 ", "12"), ("12.8", "12"), ("rocm", "rocm"), ("CPU", "cpu")]
)
def test_override_values(value, answer):
    assert override_probe(value).answer == answer


@pytest.mark.parametrize("value", ["thirteen", "1", "130", "13x"])
def test_a_bad_override_is_a_usage_error_naming_the_variable(value):
    with pytest.raises(UsageError, match="CUDA_CONSTRAINTS_CUDA_MAJOR"):
        override_probe(value)


def test_torch_answers_cuda_rocm_or_cpu():
    python = "/venv/bin/python"
    assert torch_probe(TorchReport(True, "2.9.0+cu130", cuda="13.0"), python).answer == "13"
    assert torch_probe(TorchReport(True, "2.8.0+cu128", cuda="12.8"), python).major == 12
    assert torch_probe(TorchReport(True, "2.9.0+rocm6.4", hip="6.4.43482"), python).kind == "rocm"
    cpu = torch_probe(TorchReport(True, "2.9.0+cpu"), python)
    assert cpu.kind == "cpu" and "CPU build" in cpu.detail
    assert torch_probe(TorchReport(False), python).answered is False
    broken = torch_probe(TorchReport(True, None, error="SyntaxError: bad"), python)
    assert broken.answered is False and "SyntaxError" in broken.detail


def test_cuda_version_nvcc_and_loader_answers():
    assert cuda_version_probe("12.4.1").major == 12
    assert cuda_version_probe(None).answered is False
    assert cuda_version_probe("latest").answered is False
    assert nvcc_probe("/usr/local/cuda/bin/nvcc", NVCC_13).major == 13
    assert nvcc_probe(None, None).detail == "not on PATH"
    assert libcudart_probe("ldconfig -p", LDCONFIG_13).major == 13
    both = libcudart_probe("ldconfig -p", LDCONFIG_13, ["libcudart.so.12.8.90", "libcudart.so.12"])
    assert both.major == 13 and "libcudart.so.12, libcudart.so.13" in both.detail
    assert libcudart_probe("ldconfig -p", "").answered is False


def test_driver_versions_map_to_the_newest_major_they_run():
    assert driver_version_from_proc(PROC_580) == "580.65"
    assert driver_version_from_proc(PROC_535) == "535.183"
    assert driver_version_from_proc("garbage") is None
    assert driver_version_from_smi("535.183.01\n535.183.01\n") == "535.183.01"
    assert driver_version_from_smi("NVIDIA-SMI has failed") is None
    assert [driver_major(v) for v in ("590.1", "580.65", "575.57", "525.60", "470.1", "390.1")] == [13, 13, 12, 12, 11, None]
    bound = driver_probe("/proc/driver/nvidia/version", "535.183")
    assert bound.major == 12 and bound.upper_bound


def test_the_first_answer_decides_and_disagreements_are_warnings():
    torch = Probe("torch", "python", "torch.version.cuda = '12.8'", kind="cuda", major=12)
    loader = Probe("libcudart", "ldconfig -p", "libcudart.so.13", kind="cuda", major=13)
    driver = Probe("driver", "nvidia-smi", "driver 580.65 runs CUDA 13 and older", kind="cuda", major=13, upper_bound=True)
    detection = decide("python", [override_probe(None), torch, loader, driver])
    assert detection.major == 12 and detection.decided_by is torch
    assert detection.warnings == ("libcudart says CUDA 13 (libcudart.so.13), but torch decides: CUDA 12",)


def test_a_driver_older_than_the_decided_major_is_a_warning():
    nvcc = Probe("nvcc", "nvcc", "release 13.0", kind="cuda", major=13)
    driver = driver_probe("nvidia-smi", "535.183.01")
    detection = decide("python", [nvcc, driver])
    assert detection.major == 13
    assert len(detection.warnings) == 1 and "will not start until the driver is updated" in detection.warnings[0]


def test_only_a_driver_gives_the_newest_major_it_runs():
    detection = decide("python", [override_probe(None), nvcc_probe(None, None), driver_probe("nvidia-smi", "580.65.06")])
    assert detection.answer == "13" and detection.decided_by.name == "driver"


def test_nothing_found_lists_what_was_tried():
    detection = decide("python", [override_probe(None), nvcc_probe(None, None)])
    with pytest.raises(NoCudaDetected) as failure:
        require_installable(detection, rocm_configured=False)
    assert "override: not set" in failure.value.message() and "nvcc: not on PATH" in failure.value.message()
    assert failure.value.exit_code == 3


def test_rocm_is_installable_only_when_configured():
    rocm = decide("python", [torch_probe(TorchReport(True, "2.9.0+rocm6.4", hip="6.4"), "python")])
    require_installable(rocm, rocm_configured=True)
    with pytest.raises(NoCudaDetected, match="rocm-requirements"):
        require_installable(rocm, rocm_configured=False)


# -- the command on a faked machine --------------------------------------------------------------------------


class FakeMachine:
    """A machine with no CUDA at all until a test adds some."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.monkeypatch = root, monkeypatch
        self.bin = root / "bin"
        self.bin.mkdir()
        self.driver_file = root / "proc-driver-nvidia-version"

    def program(self, name: str, output: str, exit_code: int = 0) -> None:
        script = self.bin / name
        script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({output + chr(10)!r})\nsys.exit({exit_code})\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)

    def torch(self, version: str, cuda: str | None = None, hip: str | None = None, as_file: bool = True) -> None:
        """A fake torch package; `as_file=False` keeps `version` inside `__init__` (torch is then imported)."""
        package = self.root / "site" / "torch"
        package.mkdir(parents=True)
        values = f"__version__ = {version!r}\ncuda = {cuda!r}\nhip = {hip!r}\n"
        if as_file:
            (package / "__init__.py").write_text("from . import version\n__version__ = version.__version__\n")
            (package / "version.py").write_text(values)
        else:
            indented = "".join("    " + line + "\n" for line in values.splitlines())
            (package / "__init__.py").write_text(f"class version:\n{indented}")
        self.monkeypatch.setenv("PYTHONPATH", str(self.root / "site"))


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeMachine:
    fake = FakeMachine(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", str(fake.bin))
    for name in ("CUDA_CONSTRAINTS_CUDA_MAJOR", "CUDA_VERSION", "LD_LIBRARY_PATH", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(detect, "SYSTEM_BIN_DIRS", ())
    monkeypatch.setattr(detect, "DRIVER_VERSION_FILE", str(fake.driver_file))
    monkeypatch.chdir(tmp_path)
    return fake


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["detect", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_torch_reporting_13_0_answers_13(machine, capsys):
    machine.torch("2.9.0+cu130", cuda="13.0")
    code, out, err = run(capsys)
    assert (code, out.splitlines()[-1], err) == (0, "13", "")


def test_a_cpu_torch_decides_even_with_a_cuda_13_toolkit_installed(machine, capsys):
    machine.torch("2.9.0+cpu")
    machine.program("nvcc", NVCC_13)
    machine.program("ldconfig", LDCONFIG_13)
    machine.monkeypatch.setenv("CUDA_VERSION", "13.0.1")
    code, out, err = run(capsys)
    assert code == 3 and out == ""
    assert "torch 2.9.0+cpu is a CPU build" in err
    assert "warning: nvcc says CUDA 13" in err


def test_the_override_wins_over_torch(machine, capsys):
    machine.torch("2.9.0+cu130", cuda="13.0")
    machine.monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "12")
    code, out, err = run(capsys)
    assert (code, out.splitlines()[-1]) == (0, "12")
    assert "warning: torch says CUDA 13" in err


def test_torch_whose_version_lives_in_the_package_is_imported(machine, capsys):
    machine.torch("2.8.0+cu128", cuda="12.8", as_file=False)
    assert run(capsys)[:2] == (0, "12\n")


def test_disagreeing_probes_warn_on_stderr(machine, capsys):
    machine.torch("2.8.0+cu128", cuda="12.8")
    machine.program("ldconfig", LDCONFIG_13)
    code, out, err = run(capsys)
    assert (code, out) == (0, "12\n")
    assert "warning: libcudart says CUDA 13 (libcudart.so.13), but torch decides: CUDA 12" in err


def test_without_torch_the_toolkit_answers(machine, capsys):
    machine.program("nvcc", NVCC_12)
    machine.program("ldconfig", LDCONFIG_13)
    code, out, err = run(capsys)
    assert (code, out) == (0, "12\n")
    assert "libcudart says CUDA 13" in err


def test_cuda_version_of_nvidia_images_comes_before_nvcc(machine, capsys):
    machine.monkeypatch.setenv("CUDA_VERSION", "12.9.1")
    machine.program("nvcc", NVCC_12)
    assert run(capsys)[:2] == (0, "12\n")


def test_libcudart_in_ld_library_path_is_found(machine, capsys):
    libraries = machine.root / "cuda" / "lib64"
    libraries.mkdir(parents=True)
    (libraries / "libcudart.so.12.8.90").write_bytes(b"")
    machine.monkeypatch.setenv("LD_LIBRARY_PATH", str(libraries))
    assert run(capsys)[:2] == (0, "12\n")


def test_the_driver_alone_gives_the_newest_major_it_runs(machine, capsys):
    machine.program("nvidia-smi", "580.65.06")
    assert run(capsys)[:2] == (0, "13\n")
    machine.driver_file.write_text(PROC_535)
    assert run(capsys)[:2] == (0, "12\n")


def test_a_toolkit_newer_than_the_driver_warns(machine, capsys):
    machine.program("nvcc", NVCC_13)
    machine.driver_file.write_text(PROC_535)
    code, out, err = run(capsys)
    assert (code, out) == (0, "13\n") and "update" in err


def test_nothing_found_exits_3_listing_every_probe(machine, capsys):
    code, out, err = run(capsys)
    assert code == 3 and out == ""
    tried = ("override: not set", "torch: torch is not installed", "CUDA_VERSION: not set", "nvcc: not on PATH", "libcudart:", "driver:")
    for probe in tried:
        assert probe in err


def test_a_failing_nvidia_smi_is_reported(machine, capsys):
    machine.program("nvidia-smi", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", exit_code=9)
    code, out, _ = run(capsys, "--json")
    report = json.loads(out)
    assert code == 3
    assert "nvidia-smi failed" in report["probes"][-1]["detail"]


def test_rocm_prints_rocm_and_exits_3_unless_configured(machine, capsys):
    machine.torch("2.9.0+rocm6.4", hip="6.4.43482")
    code, out, err = run(capsys)
    assert (code, out) == (3, "rocm\n") and "rocm-requirements" in err
    (machine.root / "pyproject.toml").write_text('[tool.cuda-constraints]\nrocm-requirements = "requirements/rocm.txt"\n')
    assert run(capsys)[:2] == (0, "rocm\n")


def test_json_shows_every_probe_and_which_decided(machine, capsys):
    machine.torch("2.9.0+cu130", cuda="13.0")
    machine.program("nvcc", NVCC_12)
    code, out, _ = run(capsys, "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["answer"], report["cuda_major"], report["decided_by"]) == ("13", 13, "torch")
    assert [p["name"] for p in report["probes"]] == ["override", "torch", "CUDA_VERSION", "nvcc", "libcudart", "driver"]
    assert report["probes"][1]["detail"] == "torch 2.9.0+cu130: torch.version.cuda = '13.0'"
    assert report["probes"][3]["answer"] == "12" and report["probes"][3]["source"] == str(machine.bin / "nvcc")
    assert report["warnings"] == ["nvcc says CUDA 12 (release 12.6), but torch decides: CUDA 13"]
    assert report["python"] == sys.executable


def test_python_flag_asks_another_interpreter(machine, capsys):
    machine.torch("2.9.0+cu130", cuda="13.0")
    assert run(capsys, "--python", sys.executable)[:2] == (0, "13\n")
    code, _, err = run(capsys, "--python", str(machine.root / "no-python"))
    assert code == 2 and "no such interpreter" in err


def test_a_bad_override_exits_2(machine, capsys):
    machine.monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "newest")
    code, _, err = run(capsys)
    assert code == 2 and "CUDA_CONSTRAINTS_CUDA_MAJOR='newest'" in err
