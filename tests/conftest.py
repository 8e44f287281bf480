from __future__ import annotations

from pathlib import Path

import pytest

from resolver.commands.compile import CompileRequest, CompileResult, compile_constraints
from resolver.files.config import (
    ENVIRONMENT_EXTRA_INDEX_VARIABLES,
    ENVIRONMENT_FIND_LINKS_VARIABLES,
    ENVIRONMENT_INDEX_VARIABLES,
    Config,
)
from resolver.files.requirements import load_requirements
from resolver.model.targets import Environment, Platform, PythonVersion
from resolver.resolve.selection import SelectionOptions

from .synthetic import SyntheticIndex, kv_connectors_index

X86 = Platform("manylinux_2_28_x86_64")
PY312 = PythonVersion(3, 12)
# Every variable pip or uv (and so this tool) reads an index or a find-links location from.
INDEX_VARIABLES = (*ENVIRONMENT_INDEX_VARIABLES, *ENVIRONMENT_EXTRA_INDEX_VARIABLES, *ENVIRONMENT_FIND_LINKS_VARIABLES,
                   "UV_INDEX_STRATEGY", "PIP_NO_INDEX", "UV_NO_INDEX")


@pytest.fixture(autouse=True)
def no_indexes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests see no index or netrc of the machine they run on; a test that wants one sets it."""
    forget_the_machine_indexes(monkeypatch, tmp_path_factory.getbasetemp())


def forget_the_machine_indexes(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """(Module-scoped fixtures run before the autouse one, and call this themselves.)"""
    for name in INDEX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(directory / "no-netrc"))


ARM = Platform("manylinux_2_28_aarch64")


def packaging_rank(filename: str, environment: Environment) -> int | None:
    """A wheel's rank here as packaging reads its whole name: the reference for `compatible_rank`."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return None
    ranks = [environment.tag_priority[tag] for tag in tags if tag in environment.tag_priority]
    return min(ranks) if ranks else None


@pytest.fixture
def kv_index() -> SyntheticIndex:
    return kv_connectors_index()


class Project:
    """A project directory with a requirements file, compiled against a synthetic index."""

    def __init__(self, root: Path, index: SyntheticIndex) -> None:
        self.root, self.index = root, index
        self.requirements = root / "requirements" / "kv.txt"
        self.output = root / "constraints"

    def write(self, text: str) -> Path:
        self.requirements.parent.mkdir(parents=True, exist_ok=True)
        self.requirements.write_text(text)
        return self.requirements

    def compile(
        self,
        majors=(12, 13),
        platforms=(X86, ARM),
        pythons=(PY312,),
        config: Config | None = None,
        **options,
    ) -> CompileResult:
        selection_fields = {k: options.pop(k) for k in ("pre", "allow_sdist", "allow_sdist_packages", "exclude_newer") if k in options}
        request = CompileRequest(
            config=config or Config(root=self.root),
            requirement_files=(self.requirements,),
            majors=majors,
            python_versions=pythons,
            platforms=platforms,
            output_dir=self.output,
            selection=SelectionOptions(**selection_fields),
            index_url="https://index.test/simple",
            command="cuda-constraints compile",
            **options,
        )
        requirements_input = load_requirements([self.requirements], root=self.root)
        return compile_constraints(request, requirements_input, self.index)

    def text(self, major: int) -> str:
        return (self.output / f"cu{major}.txt").read_text()

    def pins(self, major: int) -> dict[str, str]:
        """name -> version (or 'version ; marker' lines joined) of a written file."""
        from resolver.files.constraints import parse

        document = parse(self.text(major), f"cu{major}.txt")
        found: dict[str, str] = {}
        for pin in document.pins:
            value = str(pin.version) + (f" ; {pin.marker}" if pin.marker else "")
            found[pin.name] = found[pin.name] + " | " + value if pin.name in found else value
        return found


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under a constraints directory, by relative path, but the lock and the folder's .gitignore:
    what a failed or interrupted run must leave as it was, with no temporary file beside it."""
    kept = ("lock", ".gitignore")
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not (path.parent.name == ".cuda-constraints" and path.name in kept)
    }


@pytest.fixture
def inside(monkeypatch: pytest.MonkeyPatch):
    """Enter a directory as the working directory, with its own cache directory."""

    def enter(root: Path) -> Path:
        monkeypatch.chdir(root)
        monkeypatch.setenv("CUDA_CONSTRAINTS_CACHE_DIR", str(root / ".cache"))
        return root

    return enter


@pytest.fixture
def project(tmp_path: Path, kv_index: SyntheticIndex) -> Project:
    return Project(tmp_path, kv_index)


@pytest.fixture
def goodpkg_server():
    """A local index on 127.0.0.1 with one project, goodpkg 1.0, for both Linux machines."""
    from .index_server import IndexServer, ServedIndex
    from .synthetic import BOTH_ARCHES

    index = ServedIndex()
    index.add("goodpkg", "1.0", tags=BOTH_ARCHES)
    with IndexServer(index) as server:
        yield server
