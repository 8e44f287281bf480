"""The pre-commit hooks (.pre-commit-hooks.yaml) through the real pre-commit, on a temporary git repository
whose index is served on 127.0.0.1: pre-commit installs the tool from a git repository of this one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .index_server import IndexServer, ServedIndex
from .synthetic import KV_REQUIREMENTS, kv_connectors_index

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(directory: Path, *arguments: str) -> str:
    environment = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(["git", *arguments], cwd=directory, capture_output=True, text=True, check=True, env=environment)
    return done.stdout.strip()


def hook_repository(destination: Path) -> str:
    """This repository's tracked files, committed in a repository of their own: what `repo:` points at."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    for name in files:
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    git(destination, "init", "-q")
    git(destination, "add", "-A")
    git(destination, "commit", "-qm", "hooks")
    return git(destination, "rev-parse", "HEAD")


def pre_commit(project: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PRE_COMMIT_HOME": str(home)}
    environment.pop("PIP_FIND_LINKS", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", hook, "--all-files"], cwd=project,
                          capture_output=True, text=True, check=False, env=environment)


def test_the_check_and_compile_hooks_through_pre_commit(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    rev = hook_repository(hooks)
    index = ServedIndex()
    index.releases.update(kv_connectors_index().releases)
    with IndexServer(index) as server:
        project = tmp_path / "project"
        (project / "requirements").mkdir(parents=True)
        (project / "requirements" / "kv.txt").write_text(KV_REQUIREMENTS)
        (project / "pyproject.toml").write_text(
            f'[tool.cuda-constraints]\nrequirements = ["requirements/kv.txt"]\nindex-url = "{server.simple_url}"\n'
        )
        (project / ".pre-commit-config.yaml").write_text(
            f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n      - id: cuda-constraints-check\n"
            "      - id: cuda-constraints-compile\n"
        )
        git(project, "init", "-q")
        git(project, "add", "-A")
        home = tmp_path / "pre-commit-home"
        compiled = pre_commit(project, "cuda-constraints-compile", home)  # new files: not yet tracked
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr
        assert (project / "constraints" / "cu13.txt").is_file()
        git(project, "add", "-A")
        checked = pre_commit(project, "cuda-constraints-check", home)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        (project / "requirements" / "kv.txt").write_text(KV_REQUIREMENTS + "numpy\n")
        git(project, "add", "-A")
        stale = pre_commit(project, "cuda-constraints-check", home)
        assert stale.returncode == 1 and "the inputs changed since it was generated" in stale.stdout
        regenerated = pre_commit(project, "cuda-constraints-compile", home)
        assert regenerated.returncode == 1 and "files were modified by this hook" in regenerated.stdout
        assert pre_commit(project, "cuda-constraints-check", home).returncode == 0
