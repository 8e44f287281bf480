"""A frozen snapshot of the real index for case tests in resolvelib's style (tests/data/frozen).

`python -m tests.frozen` (needs the network) compiles every case of tests/data/frozen/cases against the
real index through the tool's own client, records each project page and each file's metadata the
resolvers asked for, prunes the pages to the files the cases' targets could install (and sdists), and
writes them next to each case's result, which becomes its expectation. `FrozenIndex` serves the
snapshot back as a metadata source, offline, for tests/test_cases.py.

Snapshot layout:

    index/projects/<name>.json   {"name", "releases": {version: [[filename, sha256, requires_python, yanked,
                                                                  upload time, size], ...]}}
    index/metadata/<name>.json   {filename: {"requires_dist": [...], "requires_python", "provides_extra": [...]}}
    cases/<case>.json            {"requirements": [paths relative to the case], "config": {...},
                                  "expected": {major: {"pins": [...], "excluded": [...], "swapped": [...]}}}
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from resolver.commands.compile import CompileResult, compile_constraints
from resolver.commands.options import CompileRequest
from resolver.errors import MetadataUnavailable, ProjectNotFound
from resolver.files.config import Config
from resolver.files.requirements import load_requirements
from resolver.model.distributions import CoreMetadata, DistFile, Project, Release, wheel_tags
from resolver.model.targets import Platform, PythonVersion, environment_grid
from resolver.resolve.selection import SelectionOptions

FROZEN = Path(__file__).parent / "data" / "frozen"
URL = "https://frozen.test/packages/"


# -- serving the snapshot ---------------------------------------------------------------------------------


class FrozenIndex:
    """The snapshot as a metadata source: what the real index answered, when it was frozen."""

    def __init__(self, root: Path = FROZEN / "index") -> None:
        self.root = root
        self._projects: dict[str, Project] = {}
        self._metadata: dict[str, dict[str, Any]] = {}

    def project(self, name: NormalizedName) -> Project:
        if name not in self._projects:
            path = self.root / "projects" / f"{name}.json"
            if not path.is_file():
                raise ProjectNotFound(name, f"{URL}{name} (not in the frozen snapshot)")
            self._projects[name] = _project(json.loads(path.read_text()))
        return self._projects[name]

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        if release.name not in self._metadata:
            path = self.root / "metadata" / f"{release.name}.json"
            self._metadata[release.name] = json.loads(path.read_text()) if path.is_file() else {}
        fields = self._metadata[release.name].get(file.filename)
        if fields is None:
            raise MetadataUnavailable(file.url, f"{file.filename} is not in the frozen snapshot (freeze again)")
        return CoreMetadata(
            release.name, release.version, tuple(fields["requires_dist"]), fields["requires_python"],
            tuple(fields["provides_extra"]), "synthetic",
        )

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        pass

    def prefetch_extension_modules(self, file: DistFile) -> None:
        pass

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        name = canonicalize_name(file.filename.split("-", 1)[0])
        path = self.root / "extensions" / f"{name}.json"
        found = json.loads(path.read_text()).get(file.filename) if path.is_file() else None
        return tuple(found) if found is not None else None

    def start_crawl(self, plans: object) -> None:
        pass

    def existing(self, names: Iterable[str]) -> set[str]:
        return {name for name in names if (self.root / "projects" / f"{canonicalize_name(name)}.json").is_file()}

    def cancel(self) -> None:
        pass

    def routed(self, routing: object) -> Any:
        return self


def _project(document: Mapping[str, Any]) -> Project:
    name = canonicalize_name(document["name"])
    releases = []
    for version, rows in document["releases"].items():
        files = tuple(
            DistFile(filename, URL + filename, sha256, requires_python, yanked, size, _time(uploaded))
            for filename, sha256, requires_python, yanked, uploaded, size in rows
        )
        releases.append(Release(name, Version(version), files))
    releases.sort(key=lambda r: r.version, reverse=True)
    return Project(name, tuple(releases))


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# -- cases --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    requirements: tuple[Path, ...]
    config: Mapping[str, Any]
    expected: Mapping[str, Any]


def cases() -> list[Case]:
    found = []
    for path in sorted((FROZEN / "cases").glob("*.json")):
        document = json.loads(path.read_text())
        requirements = tuple((path.parent / p).resolve() for p in document["requirements"])
        found.append(Case(path.stem, requirements, document["config"], document.get("expected", {})))
    return found


def compile_case(case: Case, index: Any, output: Path) -> CompileResult:
    """The case compiled (nothing written: a dry run) against `index`."""
    config = case.config
    request = CompileRequest(
        config=Config(root=output),
        requirement_files=case.requirements,
        majors=tuple(config["cuda"]),
        python_versions=tuple(PythonVersion.parse(v) for v in config.get("python-versions", ["3.12"])),
        platforms=tuple(Platform.parse(p) for p in config["platforms"]),
        output_dir=output,
        selection=SelectionOptions(
            allow_sdist_packages=frozenset(config.get("allow-sdist", ())),
            exclude_dependencies=frozenset(config.get("exclude-dependencies", ())),
        ),
        index_url="https://pypi.org/simple",
        command="cuda-constraints compile",
        dry_run=True,
    )
    requirements_input = load_requirements(list(case.requirements), root=output)
    return compile_constraints(request, requirements_input, index)


def outcome(result: CompileResult) -> dict[str, Any]:
    """What a case expects: per major, the pin lines, the exclusions and the swaps."""
    return {
        str(o.major): {
            "pins": [pin.requirement for pin in o.new.pins],
            "excluded": [f"{e.name} (required by {e.required_by})" for e in o.new.excluded],
            "swapped": [f"{s.original} -> {s.replacement}" for s in o.new.swapped],
        }
        for o in result.outcomes
    }


# -- freezing -----------------------------------------------------------------------------------------------


class Recorder:
    """The real index, remembering every page and metadata the resolvers asked for."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.projects: dict[str, Project] = {}
        self.read: dict[str, dict[str, CoreMetadata]] = {}
        self.extensions: dict[str, dict[str, tuple[str, ...] | None]] = {}

    def project(self, name: NormalizedName) -> Project:
        project: Project = self.index.project(name)
        self.projects[name] = project
        return project

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        found: CoreMetadata = self.index.metadata(release, file)
        self.read.setdefault(release.name, {})[file.filename] = found
        return found

    def routed(self, routing: Any) -> Recorder:
        """The routed view, recorded into the same snapshot."""
        view = Recorder(self.index.routed(routing))
        view.projects, view.read, view.extensions = self.projects, self.read, self.extensions
        return view

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        found: tuple[str, ...] | None = self.index.extension_modules(file)
        self.extensions.setdefault(canonicalize_name(file.filename.split("-", 1)[0]), {})[file.filename] = found
        return found

    def __getattr__(self, name: str) -> Any:  # prefetch_metadata, start_crawl, existing, cancel
        return getattr(self.index, name)


def freeze(selected: Sequence[str] = ()) -> None:
    from resolver.index.blocking import BlockingIndex
    from resolver.index.cache import Cache
    from resolver.index.client import ClientOptions, IndexClient

    projects: dict[str, Project] = {}
    metadata: dict[str, dict[str, CoreMetadata]] = {}
    extensions: dict[str, dict[str, Any]] = {}
    environments = set()
    for case in cases():
        if selected and case.name not in selected:
            continue
        with BlockingIndex(lambda: IndexClient(ClientOptions(), Cache(None))) as live, tempfile.TemporaryDirectory() as out:
            recorder = Recorder(live)
            result = compile_case(case, recorder, Path(out))
        projects.update(recorder.projects)
        for name, files in recorder.read.items():
            metadata.setdefault(name, {}).update(files)
        for name, found in recorder.extensions.items():
            extensions.setdefault(name, {}).update(found)
        environments.update(environment_grid(
            tuple(PythonVersion.parse(v) for v in case.config.get("python-versions", ["3.12"])),
            tuple(Platform.parse(p) for p in case.config["platforms"]),
        ))
        path = FROZEN / "cases" / f"{case.name}.json"
        document = json.loads(path.read_text())
        document["expected"] = outcome(result)
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"{case.name}: {sum(len(m['pins']) for m in document['expected'].values())} pins", file=sys.stderr)
    _write_index(projects, metadata, environments)
    for name, found in extensions.items():
        _write(FROZEN / "index" / "extensions" / f"{name}.json", {f: list(n) if n is not None else None for f, n in found.items()})


def _write_index(projects: Mapping[str, Project], metadata: Mapping[str, Mapping[str, CoreMetadata]], environments: set[Any]) -> None:
    supported = set().union(*(environment.tag_priority for environment in environments))
    for name, project in projects.items():
        # Releases older than the oldest one whose dependencies were read were never reached: newest first,
        # a resolver stops at the first that fits. Dropping them keeps the snapshot small.
        read = {release.version for release in project.releases if any(f.filename in metadata.get(name, {}) for f in release.files)}
        oldest = min(read) if read else project.releases[min(2, len(project.releases) - 1)].version
        releases = {}
        for release in (r for r in project.releases if r.version >= oldest):
            kept = [f for f in release.files if f.is_sdist or (wheel_tags(f.filename) & supported)]
            releases[str(release.version)] = [
                [f.filename, f.sha256, f.requires_python, f.yanked, f.upload_time.isoformat() if f.upload_time else None, f.size]
                for f in kept
            ]
        _write(FROZEN / "index" / "projects" / f"{name}.json", {"name": project.name, "releases": releases})
    for name, files in metadata.items():
        document = {
            filename: {"requires_dist": list(m.requires_dist), "requires_python": m.requires_python, "provides_extra": list(m.provides_extra)}
            for filename, m in sorted(files.items())
        }
        _write(FROZEN / "index" / "metadata" / f"{name}.json", document)


def _write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    freeze(sys.argv[1:])
