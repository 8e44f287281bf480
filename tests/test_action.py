"""The composite action (action.yml), run as a runner runs it: each `run:` script with bash, its `env:` values
substituted the way the runner substitutes `${{ … }}` there, hostile inputs included; the tool it installs
into its own environment; and a linter for actions (zizmor) over it and the example workflows."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .synthetic import write_project

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS = ACTION["runs"]["steps"]
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SETUP = next(step for step in STEPS if step.get("name", "").startswith("Install cuda-constraints into its own environment"))
INSTALL = next(step for step in STEPS if step.get("id") == "install")
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # the runner's `shell: bash`


def expand(text: str, context: dict[str, str]) -> str:
    """`${{ inputs.x }}` and the like replaced by their values, as the runner does before a step starts."""
    return EXPRESSION.sub(lambda match: context[match.group(1)], text)


def run_step(step: dict, runner_temp: Path, cwd: Path, inputs: dict[str, str] | None = None,
             extra_env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """One `run:` step: its script as written (no expression inside), its `env:` expanded; returns the
    result and the outputs it wrote to $GITHUB_OUTPUT."""
    assert step["shell"] == "bash" and "${{" not in step["run"], "an input reaches the script only through env:"
    given = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()} | (inputs or {})
    context = {f"inputs.{name}": value for name, value in given.items()}
    context |= {"github.action_path": str(ROOT), "runner.temp": str(runner_temp)}
    outputs = runner_temp / "github-output"
    outputs.write_text("")
    script = runner_temp / "step.sh"
    script.write_text(step["run"])
    env = {
        **os.environ, "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(outputs), "GITHUB_ACTION_PATH": str(ROOT),
        **{name: expand(str(value), context) for name, value in step.get("env", {}).items()},
        **(extra_env or {}),
    }
    completed = subprocess.run([*BASH, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    return completed, written


# -- inputs are arguments, never shell code -------------------------------------------------------------------------

FAKE_TOOL = """\
#!{python}
# Records each call's arguments (one JSON list a line); `detect` answers 13, as on a CUDA 13 runner.
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["detect"]:
    print("13")
"""


@pytest.fixture
def runner(tmp_path: Path) -> Path:
    """A runner's temporary directory holding the tool's environment: this interpreter (which can import the
    tool) and a `cuda-constraints` that only records how it was called."""
    bin_dir = tmp_path / "runner" / "cuda-constraints-venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    tool = bin_dir / "cuda-constraints"
    tool.write_text(FAKE_TOOL.format(python=sys.executable))
    tool.chmod(0o755)
    (tmp_path / "project").mkdir()
    write_project(tmp_path / "project")
    return tmp_path / "runner"


def calls(runner: Path) -> list[list[str]]:
    log = runner / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def install(runner: Path, inputs: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    return run_step(INSTALL, runner, runner.parent / "project", inputs, {"FAKE_LOG": str(runner / "calls.log")})


def test_the_action_detects_installs_once_and_gives_its_outputs(runner):
    completed, outputs = install(runner)
    assert completed.returncode == 0, completed.stderr
    assert calls(runner) == [["detect", "--python", "python3"], ["install", "--python", "python3", "--cuda", "13"]]  # install verifies
    assert outputs == {"cuda-major": "13", "constraints-file": "constraints/cu13.txt"}
    completed, outputs = install(runner, {"cuda": "12", "install-args": " --installer pip\n--constraints-dir  locks "})
    assert completed.returncode == 0, completed.stderr
    assert calls(runner)[-1] == ["install", "--python", "python3", "--cuda", "12", "--installer", "pip", "--constraints-dir", "locks"]
    assert outputs == {"cuda-major": "12", "constraints-file": "locks/cu12.txt"}


HOSTILE = [
    "$(touch {marker})",
    "`touch {marker}`",
    '"; touch {marker}; "',
    "'; touch {marker}; '",
    "x\ntouch {marker}",
    "x && touch {marker} #",
    "*",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", ["python", "cuda", "install-args", "working-directory"])
def test_a_hostile_input_reaches_the_tool_as_plain_words_and_runs_nothing(runner, name, value):
    marker = runner / "pwned"
    hostile = value.format(marker=marker)
    completed, outputs = install(runner, {name: hostile})
    assert not marker.exists(), f"{name}={hostile!r} ran a command:\n{completed.stdout}\n{completed.stderr}"
    made = calls(runner)
    if name == "python":
        assert made[0] == ["detect", "--python", hostile] and made[1][:3] == ["install", "--python", hostile]
    elif name == "cuda":
        assert made == [["install", "--python", "python3", "--cuda", hostile]]
        assert completed.returncode != 0 and not outputs  # not a major: no output is written from it
    elif name == "install-args":
        assert made[1] == ["install", "--python", "python3", "--cuda", "13", *hostile.split()]  # split on blanks only
    else:
        assert made == [] and completed.returncode != 0  # no such directory: nothing runs


def test_an_output_cannot_be_forged_through_an_input(runner):
    _, outputs = install(runner, {"cuda": "13\ncuda-major=99", "install-args": "--fix\nconstraints-file=/etc/passwd"})
    assert "99" not in outputs.values() and outputs.get("constraints-file") != "/etc/passwd"


# -- its own environment --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_the_tool_is_installed_into_an_environment_of_its_own_and_reused(tmp_path, installer):
    """What the action runs first on a runner whose system Python refuses installs (PEP 668): a virtual
    environment under the runner's temporary directory, made once for this checkout and Python, with uv
    when the runner has it, else with the venv module and pip."""
    uv = Path(shutil.which("uv") or Path(sys.executable).with_name("uv"))
    others = [part for part in os.environ["PATH"].split(os.pathsep) if not (Path(part) / "uv").exists()]
    path = os.pathsep.join([str(uv.parent)] * (installer == "uv") + others)
    completed, _ = run_step(SETUP, tmp_path, tmp_path, extra_env={"PATH": path, "PIP_REQUIRE_VIRTUALENV": "true"})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    venv = tmp_path / "cuda-constraints-venv"
    assert (venv / "pyvenv.cfg").is_file()
    version = subprocess.run([str(venv / "bin" / "cuda-constraints"), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("cuda-constraints ")
    completed, _ = run_step(SETUP, tmp_path, tmp_path, extra_env={"PATH": path})
    assert completed.returncode == 0 and "cuda-constraints: reusing" in completed.stdout


def test_the_tool_environment_is_cached_between_runs():
    cache = next(step for step in STEPS if step.get("uses", "").startswith("actions/cache@"))
    assert re.fullmatch(r"actions/cache@[0-9a-f]{40}", cache["uses"])  # pinned to a commit
    assert cache["with"]["path"] == "${{ runner.temp }}/cuda-constraints-venv" and cache["if"] == "inputs.cache == 'true'"
    assert SETUP["env"]["VENV"] == INSTALL["env"]["VENV"] == cache["with"]["path"]


# -- a linter for actions --------------------------------------------------------------------------------------------


def test_zizmor_finds_nothing_in_the_action_and_the_example_workflows():
    zizmor = shutil.which("zizmor") or str(Path(sys.executable).with_name("zizmor"))
    workflows = sorted((ROOT / "examples" / "github-actions").glob("*.yml"))
    completed = subprocess.run([zizmor, "--offline", "--no-progress", str(ROOT / "action.yml"), *map(str, workflows)],
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "No findings to report" in completed.stdout + completed.stderr
