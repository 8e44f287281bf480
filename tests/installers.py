"""The real uv and the real pip, as the install tests run them: fresh virtual environments, and nothing of
this machine's installer configuration, caches, index variables or CUDA."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resolver.machine import detect
from resolver.machine.interpreter import environment_report
from resolver.machine.system import SystemMachine


def uv_program() -> str:
    found = Path(sys.executable).parent / "uv"
    return str(found) if found.exists() else (shutil.which("uv") or "uv")


def isolate_installers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pip and uv see only the indexes a test gives them; the machine shows no CUDA."""
    for name in list(os.environ):
        if name.startswith(("PIP_", "UV_")) or name in ("VIRTUAL_ENV", "CUDA_VERSION", "LD_LIBRARY_PATH", "PYTHONPATH"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + "/usr/bin" + os.pathsep + "/bin")
    monkeypatch.setattr(detect, "SYSTEM_BIN_DIRS", ())
    monkeypatch.setattr(detect, "DRIVER_VERSION_FILE", str(tmp_path / "no-driver"))


def new_venv(directory: Path) -> str:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    return str(directory / "bin" / "python")


def installed(python: str) -> dict[str, str]:
    return dict(environment_report(SystemMachine(dict(os.environ)), python).installed)
