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
try:
    with open(os.path.join(sys.prefix, "cuda-constraints-install.json"), encoding="utf-8") as handle:
        report["install_record"] = json.load(handle)
except (OSError, ValueError):
    pass
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
installed, requires, libraries = {}, {}, {}
for distribution in metadata.distributions():
    name = distribution.metadata["Name"]
    if name:
        name = re.sub(r"[-_.]+", "-", name).lower()
        if name not in installed:
            installed[name] = distribution.version
            requires[name] = distribution.requires or []
            shared = [f for f in distribution.files or () if re.search(r"\.so(\.|$)", f.name)]
            if shared:
                libraries[name] = [[str(f), os.path.abspath(str(distribution.locate_file(f)))] for f in shared]
print(json.dumps({"python": sys.executable, "markers": markers, "installed": installed, "requires": requires,
                  "libraries": libraries}))
"""

# A canary named `module?` is imported only where the module is installed (`nixl_ep?`: where nixl ships it).
CANARY_SCRIPT = _NO_CWD + r"""
import importlib, importlib.util
name = sys.argv[1]
if name.endswith("?"):
    name = name[:-1]
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        print("absent")
        sys.exit(0)
importlib.import_module(name)
"""


@dataclass(frozen=True)
class Canary:
    """`import <module>` in the interpreter: None as the error when it worked; `absent` for an optional
    canary whose module is not installed."""

    module: str
    error: str | None = None
    absent: bool = False


@dataclass(frozen=True)
class TorchReport:
    """What the interpreter's torch says about itself; `error` when it could not be read."""

    installed: bool
    version: str | None = None
    cuda: str | None = None
    hip: str | None = None
    error: str | None = None
    # The CUDA major `cuda-constraints install` installed this torch for, when it did (its record in the
    # environment names this very torch).
    installed_for: int | None = None


@dataclass(frozen=True)
class EnvironmentReport:
    """The interpreter's PEP 508 marker values and installed distributions (canonical name -> version)."""

    python: str
    markers: Mapping[str, str]
    installed: Mapping[str, str]
    # canonical name -> its Requires-Dist lines
    requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # canonical name -> the shared objects it installed (extension modules, bundled libraries): (the path
    # its RECORD gives, the absolute path)
    libraries: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def torch_report(machine: Machine, python: str) -> TorchReport:
    answer = _run_json(machine, python, TORCH_SCRIPT)
    if isinstance(answer, str):
        return TorchReport(installed=False, error=answer)
    record = answer.get("install_record")
    installed_for = None
    if isinstance(record, dict) and isinstance(record.get("cuda_major"), int) and record.get("torch") == answer.get("version"):
        installed_for = int(record["cuda_major"])
    return TorchReport(
        installed=bool(answer.get("installed")),
        version=answer.get("version"),
        cuda=answer.get("cuda"),
        hip=answer.get("hip"),
        error=answer.get("error"),
        installed_for=installed_for,
    )


def environment_report(machine: Machine, python: str) -> EnvironmentReport:
    answer = _run_json(machine, python, ENVIRONMENT_SCRIPT)
    if isinstance(answer, str):
        raise UsageError(f"cannot inspect the environment of {python}: {answer}")
    requires = {str(name): tuple(map(str, lines)) for name, lines in dict(answer.get("requires") or {}).items()}
    libraries = {
        str(name): tuple((str(shown), str(path)) for shown, path in paths) for name, paths in dict(answer.get("libraries") or {}).items()
    }
    return EnvironmentReport(str(answer["python"]), dict(answer["markers"]), dict(answer["installed"]), requires, libraries)


# Where `install` records what it put in an environment: `<sys.prefix>/cuda-constraints-install.json`.
INSTALL_RECORD = "cuda-constraints-install.json"
RECORD_SCRIPT = _NO_CWD + f"""
import os
with open(os.path.join(sys.prefix, {INSTALL_RECORD!r}), "w", encoding="utf-8") as handle:
    handle.write(sys.argv[1])
"""


def record_install(machine: Machine, python: str, record: str) -> None:
    """Write `install`'s record into the environment (a failure to write it only costs `detect` a hint)."""
    machine.run([python, "-c", RECORD_SCRIPT, record])


def import_canary(machine: Machine, python: str, module: str) -> Canary:
    """Whether `import <module>` works in the interpreter, and the error it ends with when not."""
    name = module.rstrip("?")
    result = machine.run([python, "-c", CANARY_SCRIPT, module])
    if result is None:
        return Canary(name, f"cannot run {python}")
    if result.returncode == 0:
        return Canary(name, absent=result.stdout.strip().endswith("absent"))
    return Canary(name, result.last_error_line)


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
