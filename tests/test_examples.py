"""The CI examples are ready to copy: they parse as YAML, every `cuda-constraints` invocation in them is
valid for the real argument parser, and the README documents each of them."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.metadata import Metadata

from resolver.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / "examples" / "github-actions" / "regenerate-constraints.yml"
BUILDKITE = ROOT / "examples" / "buildkite" / "pipeline.yml"
LOCK = ROOT / "examples" / "github-actions" / "install-from-lock.yml"
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", ">", ">>", "<", "(", ")"}


def github_scripts(workflow: dict) -> Iterator[str]:
    for job in workflow["jobs"].values():
        yield from (step["run"] for step in job["steps"] if "run" in step)


def buildkite_scripts(pipeline: dict) -> Iterator[str]:
    for step in pipeline["steps"]:
        commands = step.get("command", step.get("commands", []))
        yield from [commands] if isinstance(commands, str) else commands


def invocations(script: str) -> Iterator[list[str]]:
    """The argument lists of every `cuda-constraints` command in a shell script."""
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in SHELL_OPERATORS:
                if command and Path(command[0]).name == "cuda-constraints":
                    yield command[1:]
                command = []
            else:
                command.append(token)


def all_invocations() -> list[tuple[str, list[str]]]:
    workflow = yaml.safe_load(GITHUB.read_text())
    pipeline = yaml.safe_load(BUILDKITE.read_text())
    found = [(GITHUB.name, arguments) for script in github_scripts(workflow) for arguments in invocations(script)]
    found += [(BUILDKITE.name, arguments) for script in buildkite_scripts(pipeline) for arguments in invocations(script)]
    return found


def test_the_examples_use_every_command_a_scheduled_job_needs():
    used = {(source, arguments[0]) for source, arguments in all_invocations()}
    assert {("regenerate-constraints.yml", c) for c in ("compile", "check", "diff")} <= used
    assert {("pipeline.yml", c) for c in ("check", "install")} <= used


def invocation_id(value: object) -> str:
    return " ".join(value) if isinstance(value, list) else str(value)


@pytest.mark.parametrize(("source", "arguments"), all_invocations(), ids=invocation_id)
def test_every_invocation_is_valid_for_the_cli(source, arguments, capsys):
    try:
        parsed = build_parser().parse_args(arguments)
    except SystemExit:
        pytest.fail(f"{source}: `cuda-constraints {shlex.join(arguments)}` is rejected: {capsys.readouterr().err}")
    assert callable(parsed.run)


@pytest.mark.parametrize(("source", "arguments"), all_invocations(), ids=invocation_id)
def test_the_documentation_names_every_invocation(source, arguments):
    command = f"cuda-constraints {shlex.join(arguments)}"
    documentation = "".join(path.read_text() for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))))
    assert f"`{command}`" in documentation, f"neither README.md nor docs/ document `{command}` ({source})"


def test_the_workflow_runs_weekly_and_on_demand_and_skips_the_pr_without_changes():
    workflow = yaml.safe_load(GITHUB.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "1"] and "workflow_dispatch" in triggers
    steps = workflow["jobs"]["regenerate"]["steps"]
    pull_request = next(step for step in steps if step.get("uses", "").startswith("peter-evans/create-pull-request@"))
    assert pull_request["if"] == "steps.changes.outputs.changed == 'true'"
    assert pull_request["with"]["body-path"].endswith("constraints-diff.md")
    describe = next(step for step in steps if step.get("id") == "changes")
    assert "cuda-constraints diff --format markdown > \"$RUNNER_TEMP/constraints-diff.md\"" in describe["run"]


def test_the_lock_workflow_installs_each_committed_lock_without_resolving_its_dependencies():
    workflow = yaml.safe_load(LOCK.read_text())
    job = workflow["jobs"]["install"]
    majors = {entry["cuda"] for entry in job["strategy"]["matrix"]["include"]}
    assert majors == {12, 13} and all((ROOT / "constraints" / f"pylock.cu{major}.toml").is_file() for major in majors)
    (script,) = [step["run"] for step in job["steps"] if "run" in step]
    installs = [line.split() for line in script.splitlines() if "pylock" in line]
    assert installs and all(words[-3:] == ["--no-deps", "-r", '"constraints/pylock.cu${CUDA_MAJOR}.toml"'] for words in installs)
    step = next(step for step in job["steps"] if "run" in step)
    assert step["env"] == {"CUDA_MAJOR": "${{ matrix.cuda }}"}  # the value reaches the shell through env only


# -- the composite action and the pre-commit hooks -------------------------------------------------------------

ACTION = ROOT / "action.yml"
ON_GPU = ROOT / "examples" / "github-actions" / "install-on-gpu.yml"


def test_the_gpu_workflow_uses_the_action_with_its_inputs():
    workflow = yaml.safe_load(ON_GPU.read_text())
    inputs = yaml.safe_load(ACTION.read_text())["inputs"]
    steps = workflow["jobs"]["install"]["steps"]
    used = next(step for step in steps if "/cuda-constraints@" in step.get("uses", ""))
    assert set(used["with"]) <= set(inputs)
    outputs = set(yaml.safe_load(ACTION.read_text())["outputs"])
    shown = next(step for step in steps if "CUDA_MAJOR" in step.get("env", {}))
    assert {re.search(r"outputs\.([\w-]+)", value).group(1) for value in shown["env"].values()} == outputs == {"cuda-major", "constraints-file"}


def test_no_example_installs_the_bare_name_from_an_index():
    """`cuda-constraints` is not on PyPI: every install names a pinned git reference, a path or a wheel."""
    for path in (GITHUB, BUILDKITE, ON_GPU, ACTION, ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for line in path.read_text().splitlines():
            installs = re.findall(r"pip install ((?:-\S+ )*)(\S+(?: @ \S+)?)", line)
            for _, given in installs:
                spec = given.strip("'\"")
                if spec.startswith("cuda-constraints"):
                    assert " @ git+" in spec and "@" in spec.split(" @ ")[1], f"{path.name}: {line}"


def test_the_package_builds_as_sdist_and_wheel_with_valid_metadata(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    wheel = next(tmp_path.glob("cuda_constraints-*.whl"))
    assert next(tmp_path.glob("cuda_constraints-*.tar.gz"))
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA")))
        names = archive.namelist()
    metadata = Metadata.from_email(raw, validate=True)
    assert metadata.name == "cuda-constraints" and "pyelftools>=0.29" in {str(r) for r in metadata.requires_dist or []}
    assert "resolver/__main__.py" in names and not any(n.startswith("tests/") for n in names)
