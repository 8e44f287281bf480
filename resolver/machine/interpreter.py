"""Questions asked of the target interpreter (`--python`), each a small script run in a subprocess.

The scripts need only the standard library of Python 3.8+, and drop the working directory from sys.path
so a checkout's own folders cannot answer for installed packages. Their JSON answers are read here into
frozen values; nothing else of `detect` or `install` talks to the interpreter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from .system import Machine

_NO_CWD = "import sys\nif sys.path and sys.path[0] in ('', '.'):\n    del sys.path[0]\n"

# torch.version is a generated file of plain assignments: read it without importing torch (which loads
# CUDA libraries and takes seconds); import torch only when the file is not there.
TORCH_SCRIPT = _NO_CWD + r"""
import importlib.util, json, os
report = {"installed": False}
try:
    spec = importlib.util.find_spec("torch")
except (ImportError, ValueError) as error:
    spec, report["error"] = None, f"{type(error).__name__}: {error}"
if spec is not None:
    report["installed"] = True
    report["location"] = spec.origin
    values = {}
    try:
        locations = list(spec.submodule_search_locations or [])
        path = os.path.join(locations[0], "version.py") if locations else ""
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                exec(compile(handle.read(), path, "exec"), values)
        else:
            import torch
            values = vars(torch.version)
    except Exception as error:
        report["error"] = f"{type(error).__name__}: {error}"
    for key in ("__version__", "cuda", "hip"):
        value = values.get(key)
        report[key.strip("_")] = None if value is None else str(value)
print(json.dumps(report))
"""

ENVIRONMENT_SCRIPT = _NO_CWD + r"""
import json, os, platform, re
from importlib import metadata

def full_version(info):
    version = "{0.major}.{0.minor}.{0.micro}".format(info)
    return version if info.releaselevel == "final" else version + info.releaselevel[0] + str(info.serial)

markers = {
    "implementation_name": sys.implementation.name,
    "implementation_version": full_version(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
installed, requires = {}, {}
for distribution in metadata.distributions():
    name = distribution.metadata["Name"]
    if name:
        name = re.sub(r"[-_.]+", "-", name).lower()
        if name not in installed:
            installed[name] = distribution.version
            requires[name] = distribution.requires or []
print(json.dumps({"python": sys.executable, "markers": markers, "installed": installed, "requires": requires}))
"""

CANARY_SCRIPT = _NO_CWD + "import importlib\nimportlib.import_module(sys.argv[1])\n"


@dataclass(frozen=True)
class TorchReport:
    """What the interpreter's torch says about itself; `error` when it could not be read."""

    installed: bool
    version: str | None = None
    cuda: str | None = None
    hip: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class EnvironmentReport:
    """The interpreter's PEP 508 marker values and installed distributions (canonical name -> version)."""

    python: str
    markers: Mapping[str, str]
    installed: Mapping[str, str]
    # canonical name -> its Requires-Dist lines
    requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def torch_report(machine: Machine, python: str) -> TorchReport:
    answer = _run_json(machine, python, TORCH_SCRIPT)
    if isinstance(answer, str):
        return TorchReport(installed=False, error=answer)
    return TorchReport(
        installed=bool(answer.get("installed")),
        version=answer.get("version"),
        cuda=answer.get("cuda"),
        hip=answer.get("hip"),
        error=answer.get("error"),
    )


def environment_report(machine: Machine, python: str) -> EnvironmentReport:
    answer = _run_json(machine, python, ENVIRONMENT_SCRIPT)
    if isinstance(answer, str):
        raise UsageError(f"cannot inspect the environment of {python}: {answer}")
    requires = {str(name): tuple(map(str, lines)) for name, lines in dict(answer.get("requires") or {}).items()}
    return EnvironmentReport(str(answer["python"]), dict(answer["markers"]), dict(answer["installed"]), requires)


def import_canary(machine: Machine, python: str, module: str) -> str | None:
    """None when `import <module>` works in the interpreter, else the error it ends with."""
    result = machine.run([python, "-c", CANARY_SCRIPT, module])
    if result is None:
        return f"cannot run {python}"
    return None if result.returncode == 0 else result.last_error_line


def _run_json(machine: Machine, python: str, script: str) -> dict[str, Any] | str:
    """The JSON object a script prints, or why there is none."""
    result = machine.run([python, "-c", script])
    if result is None:
        return f"cannot run {python}"
    if result.returncode != 0:
        return result.last_error_line
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"unexpected output from {python}: {result.stdout.strip()[:200]!r}"
    return answer if isinstance(answer, dict) else f"unexpected output from {python}"
