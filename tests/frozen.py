"""A frozen snapshot of the real index for case tests in resolvelib's style (tests/data/frozen).

`python -m tests.frozen [--accept] [CASE ...]` (needs the network) compiles the recorded cases of
tests/data/frozen/cases against the real index through the tool's own client, records each project page
and each file's metadata the resolvers asked for, prunes the pages to the files the cases' targets could
install (and sdists), and writes them. A case without an expectation gets its result as one; a recorded
expectation the result changes is kept, the changes are printed per major (tests/expectations.py) and the
command exits 1, unless `--accept` records them. Freezing some cases only merges into the snapshot, and
reads the index as the snapshot saw it (`Recorder`), so the other cases keep their world. `FrozenIndex`
serves the snapshot back as a metadata source, offline, for tests/test_cases.py and
tests/test_hand_cases.py; it runs the crawl ahead of the resolvers too, and records every project page
asked for (`asked`).

Hand-stated cases (cases/hand/<case>.json) are written and reasoned out by a person, over the same
snapshot, as resolvelib's functional tests are; a refreeze never reads or rewrites them:

    {"about": "why the expectation is right",
     "requirements": [requirement lines], "config": {[tool.cuda-constraints], optional},
     "unvisited": [projects whose page no part of the run may ask for, on any major],
     "expected": {major: {"pins": [every pin line] | "pins_include": [some of them],
                          "excluded": [...], "swapped": [...],   (exactly these; none when left out)
                          "unvisited": [as above, for this major only]}
                  | {"conflict": {"message": [substrings of the failure], "exit_code": 4}}}}

Each major is compiled on its own (`--cuda MAJOR`) against a fresh FrozenIndex; a release whose metadata
the snapshot lacks fails the case (bound the requirement instead, or freeze more).

Indexes this machine cannot reach are imitated (tests/imitated.py, `index/sources/PROVENANCE.md`): each is
a source of its own, asked as a major's routing asks it (a project routed to an index from that index
only; a find-links location's files ahead of the index's, by file name).

Snapshot layout:

    index/projects/<name>.json   {"name", "releases": {version: [[filename, sha256, requires_python, yanked,
                                                                  upload time, size], ...]}}
    index/metadata/<name>.json   {filename: {"requires_dist": [...], "requires_python", "provides_extra": [...]}}
    index/extensions/<name>.json {filename: [the wheel's file names] or null}
    index/sources/<key>/source.json          {"url": the index or find-links location it imitates}
    index/sources/<key>/projects|metadata/   as above
    cases/<case>.json            {"requirements": [paths relative to the case], "config": {[tool.cuda-constraints]},
                                  "expected": {major: {"pins": [...], "excluded": [...], "swapped": [...]}}}
    cases/hand/<case>.json       a hand-stated case, as above
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from resolver.commands.compile import CompileResult, compile_constraints
from resolver.commands.major_plan import read_input
from resolver.commands.options import Flags, compile_request, with_index_url
from resolver.errors import MetadataUnavailable, ProjectNotFound
from resolver.files.config import load_config
from resolver.model.distributions import DEFAULT_INDEX_URL, CoreMetadata, DistFile, Project, Release, wheel_tags
from resolver.model.indexes import IndexSource, Routing
from resolver.model.targets import Platform, PythonVersion, environment_grid
from resolver.resolve.source import Fetcher

from .expectations import merged

FROZEN = Path(__file__).parent / "data" / "frozen"
URL = "https://frozen.test/packages/"


# -- serving the snapshot ---------------------------------------------------------------------------------


class Snapshot:
    """One frozen index (or find-links location): its projects, their files' metadata and file lists."""

    def __init__(self, root: Path, url: str = URL) -> None:
        self.root, self.url = root, url
        self._projects: dict[str, Project] = {}
        self._metadata: dict[str, dict[str, Any]] = {}

    def has(self, name: NormalizedName) -> bool:
        return (self.root / "projects" / f"{name}.json").is_file()

    def project(self, name: NormalizedName) -> Project:
        if name not in self._projects:
            path = self.root / "projects" / f"{name}.json"
            if not path.is_file():
                raise ProjectNotFound(name, f"{self.url}{name} (not in the frozen snapshot)")
            self._projects[name] = _project(json.loads(path.read_text()), self.url)
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

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        name = canonicalize_name(file.filename.split("-", 1)[0])
        path = self.root / "extensions" / f"{name}.json"
        found = json.loads(path.read_text()).get(file.filename) if path.is_file() else None
        return tuple(found) if found is not None else None


class FrozenIndex:
    """The snapshot as the indexes of a run: what the real index answered when it was frozen, and the
    imitated indexes beside it, each major seeing them through its routing. `asked`: every project whose
    page the run asked for (its resolvers, the crawl ahead of them, the probes of `--cuda auto`), found or
    not, which a case's `unvisited` is checked against."""

    def __init__(self, root: Path = FROZEN / "index") -> None:
        self.pypi = Snapshot(root)
        self.sources = imitated_sources(root)
        self.asked: set[NormalizedName] = set()

    def routed(self, routing: Routing) -> RoutedView:
        return RoutedView(self.pypi, self.sources, routing, self.asked)


def imitated_sources(root: Path) -> dict[str, Snapshot]:
    """The imitated indexes and find-links locations of the snapshot, by the URL each stands for."""
    found = {}
    for path in sorted((root / "sources").glob("*/source.json")):
        url = json.loads(path.read_text())["url"]
        found[url.rstrip("/")] = Snapshot(path.parent, f"https://frozen.test/{path.parent.name}/")
    return found


class RoutedView:
    """One major's view of PyPI (`pypi`: the snapshot's, or the live one while freezing) and the imitated
    sources, as index/sources.py makes a project from real pages: a routed project from its index only;
    otherwise the first index that has it (every one with `unsafe-best-match`); the files of every
    find-links location ahead of the index's, the find-links one where both have a file name."""

    def __init__(self, pypi: Any, sources: Mapping[str, Snapshot], routing: Routing, asked: set[NormalizedName] | None = None) -> None:
        self.pypi, self.sources, self.routing = pypi, sources, routing
        self.asked = asked if asked is not None else set()
        self._projects: dict[str, Project] = {}

    def _source(self, source: IndexSource) -> Any:
        url = source.url.rstrip("/")
        if url in self.sources:
            return self.sources[url]
        return self.pypi if url == DEFAULT_INDEX_URL else None

    def project(self, name: NormalizedName) -> Project:
        self.asked.add(name)
        if name not in self._projects:
            pages: list[tuple[Project, str]] = []
            for source in self.routing.find_links:
                links = self.sources.get(source.url.rstrip("/"))
                if links is not None and links.has(name):
                    pages.append((links.project(name), source.display))
            for source in self.routing.searched(name):
                index = self._source(source)
                try:
                    found = index.project(name) if index is not None else None
                except ProjectNotFound:
                    found = None
                if found is not None:
                    pages.append((found, source.display))
                    if self.routing.strategy == "first-index":
                        break
            if not pages:
                raise ProjectNotFound(name, f"{name} (not in the frozen snapshot for this routing)")
            self._projects[name] = _merged(name, pages)
        return self._projects[name]

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        for source in self.sources.values():
            if file.url.startswith(source.url):
                return source.metadata(release, file)
        found: CoreMetadata = self.pypi.metadata(release, file)
        return found

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        found: tuple[str, ...] | None = self.pypi.extension_modules(file)
        return found

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        pass

    def prefetch_extension_modules(self, file: DistFile) -> None:
        pass

    def start(self, work: Callable[[Fetcher], Coroutine[Any, Any, None]]) -> None:
        """The resolver's background work (the crawl ahead of it), run here and now to its end: what it
        asks for is asked of the snapshot, in the same order every run."""
        asyncio.run(work(_SnapshotFetcher(self)))

    def existing(self, names: Iterable[str]) -> set[str]:
        found = set()
        for name in names:
            try:
                self.project(canonicalize_name(name))
            except ProjectNotFound:
                continue
            found.add(name)
        return found

    def close_names(self, name: NormalizedName) -> tuple[str, ...]:  # a snapshot has no root listing
        return ()

    def cancel(self) -> None:
        pass

    def routed(self, routing: Routing) -> RoutedView:
        return RoutedView(self.pypi, self.sources, routing, self.asked)


class _SnapshotFetcher:
    """A view's answers for background work (resolve/source.py's `Fetcher`); every page counts as fetched,
    so that the crawl walks as deep as it would on a cold run."""

    def __init__(self, view: RoutedView) -> None:
        self.view = view

    async def project(self, name: NormalizedName) -> Project:
        return self.view.project(name)

    async def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        return self.view.metadata(release, file)

    def fetched(self, name: NormalizedName) -> bool:
        return True


def _merged(name: NormalizedName, pages: Sequence[tuple[Project, str]]) -> Project:
    """A project from its pages (project, source as shown), the first page's file where two share a name."""
    files: dict[Version, dict[str, DistFile]] = defaultdict(dict)
    for project, shown in pages:
        for release in project.releases:
            for file in release.files:
                files[release.version].setdefault(file.filename, replace(file, index=shown))
    releases = [Release(name, version, tuple(found.values())) for version, found in files.items()]
    return Project(name, tuple(sorted(releases, key=lambda r: r.version, reverse=True)))


def _project(document: Mapping[str, Any], url: str = URL) -> Project:
    name = canonicalize_name(document["name"])
    releases = []
    for version, rows in document["releases"].items():
        files = tuple(
            DistFile(filename, url + filename, sha256=sha256, requires_python=requires_python, yanked=yanked, size=size,
                     uploaded=uploaded)
            for filename, sha256, requires_python, yanked, uploaded, size in rows
        )
        releases.append(Release(name, Version(version), files))
    releases.sort(key=lambda r: r.version, reverse=True)
    return Project(name, tuple(releases))


# -- cases --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    requirements: tuple[Path, ...]
    config: Mapping[str, Any]
    expected: Mapping[str, Any]


# Configuration keys naming files, relative to the case file.
PATH_KEYS = ("requirements", "constraints", "extra-requirements")


def cases() -> list[Case]:
    found = []
    for path in sorted((FROZEN / "cases").glob("*.json")):
        document = json.loads(path.read_text())
        requirements = tuple((path.parent / p).resolve() for p in document["requirements"])
        config = _with_absolute_paths(document["config"], path.parent)
        found.append(Case(path.stem, requirements, config, document.get("expected", {})))
    return found


@dataclass(frozen=True)
class HandCase:
    """A case a person wrote and reasoned out (cases/hand/<name>.json); a refreeze never rewrites it."""

    name: str
    lines: tuple[str, ...]  # the requirements file, line by line
    config: Mapping[str, Any]  # [tool.cuda-constraints]
    expected: Mapping[str, Mapping[str, Any]]  # major -> pins (or pins_include), excluded, swapped; or conflict
    unvisited: tuple[NormalizedName, ...]  # projects whose page no part of the run may ask for


def hand_cases() -> list[HandCase]:
    found = []
    for path in sorted((FROZEN / "cases" / "hand").glob("*.json")):
        document = json.loads(path.read_text())
        found.append(HandCase(
            path.stem, tuple(document["requirements"]), _with_absolute_paths(document.get("config", {}), path.parent),
            document["expected"], tuple(canonicalize_name(name) for name in document.get("unvisited", ())),
        ))
    return found


def compile_hand_case(case: HandCase, major: int, index: Any, output: Path) -> CompileResult:
    """The case's requirements, written to a file, compiled for one CUDA major as `compile --cuda MAJOR
    --dry-run` would compile them; CudaConstraintsError when it fails."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "requirements.txt").write_text("".join(f"{line}\n" for line in case.lines))
    write_pyproject(output, {"requirements": ["requirements.txt"], **case.config})
    return compile_project(output, index, ["--dry-run", "--cuda", str(major)])


def _with_absolute_paths(table: Mapping[str, Any], base: Path) -> dict[str, Any]:
    return {
        key: [str((base / p).resolve()) for p in value] if key in PATH_KEYS
        else _with_absolute_paths(value, base) if isinstance(value, Mapping) else value
        for key, value in table.items()
    }


def compile_case(case: Case, index: Any, output: Path, flags: Sequence[str] = ()) -> CompileResult:
    """The case compiled against `index` as `compile` would compile it, from a pyproject.toml holding its
    configuration, with these command-line flags (a dry run: nothing is written)."""
    write_pyproject(output, {"requirements": [str(p) for p in case.requirements], **case.config})
    return compile_project(output, index, ["--dry-run", *flags])


def compile_project(root: Path, index: Any, flags: Sequence[str] = ()) -> CompileResult:
    """`cuda-constraints compile FLAGS` in `root` (its pyproject.toml, none of the machine's index settings),
    against `index`: the request the command line makes, compiled; CudaConstraintsError when it fails."""
    request = compile_request(Flags.from_argv(flags), load_config(root, environ={}))
    requirements_input = read_input(request)
    request = with_index_url(request, None, requirements_input)
    return compile_constraints(request, requirements_input, index)


def write_pyproject(root: Path, table: Mapping[str, Any]) -> None:
    """`[tool.cuda-constraints]` with these keys (strings, numbers, lists of them, tables of them)."""
    lines = ["[tool.cuda-constraints]"]
    nested = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            nested.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    for key, value in nested:
        for name, settings in value.items():
            lines.append(f"[tool.cuda-constraints.{key}.{name}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")


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
    """The real index, remembering every page and metadata the resolvers asked for. With `base` (an
    existing snapshot, when some cases are frozen into it) the index as that snapshot saw it: a project
    it has is its page there plus the real index's older releases (a newer one did not exist then, or is
    left out so that the other cases keep their world), and what it read is read from it."""

    def __init__(self, index: Any, base: Snapshot | None = None) -> None:
        self.index, self.base = index, base
        self.projects: dict[str, Project] = {}
        self.read: dict[str, dict[str, CoreMetadata]] = {}
        self.extensions: dict[str, dict[str, tuple[str, ...] | None]] = {}
        self._live: dict[str, DistFile] = {}  # file name -> the real index's file

    def project(self, name: NormalizedName) -> Project:
        project: Project = self.index.project(name)
        self._live.update((f.filename, f) for release in project.releases for f in release.files)
        if self.base is not None and self.base.has(name):
            known = self.base.project(name)
            oldest = min(release.version for release in known.releases)
            project = Project(name, (*known.releases, *(r for r in project.releases if r.version < oldest)))
        self.projects[name] = project
        return project

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        try:
            found: CoreMetadata = self.base.metadata(release, file) if self.base is not None else None
        except MetadataUnavailable:
            found = None
        if found is None:
            found = self.index.metadata(release, self._live.get(file.filename, file))
        self.read.setdefault(release.name, {})[file.filename] = found
        return found

    def routed(self, routing: Routing) -> RoutedView:
        """The routed view: PyPI from the real index, recorded into the same snapshot; the imitated
        sources from the snapshot."""
        pypi = Recorder(self.index.routed(Routing()), self.base)
        pypi.projects, pypi.read, pypi.extensions, pypi._live = self.projects, self.read, self.extensions, self._live
        return RoutedView(pypi, imitated_sources(FROZEN / "index"), routing)

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        name = canonicalize_name(file.filename.split("-", 1)[0])
        listed = self.base.root / "extensions" / f"{name}.json" if self.base is not None else None
        known = json.loads(listed.read_text()) if listed is not None and listed.is_file() else {}
        if file.filename in known:
            found = tuple(known[file.filename]) if known[file.filename] is not None else None
        else:
            found = self.index.extension_modules(self._live.get(file.filename, file))
        self.extensions.setdefault(name, {})[file.filename] = found
        return found

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        pass

    def prefetch_extension_modules(self, file: DistFile) -> None:
        pass

    def __getattr__(self, name: str) -> Any:  # start, existing, cancel
        return getattr(self.index, name)


def freeze(selected: Sequence[str] = (), accept: bool = False) -> bool:
    """Freeze the selected cases (all when none is named) into the snapshot. An expectation the new
    results change is kept, and its differences printed, unless `accept`: whether none was kept."""
    from resolver.index.blocking import BlockingIndex
    from resolver.index.cache import Cache
    from resolver.index.client import ClientOptions, IndexClient

    projects: dict[str, Project] = {}
    metadata: dict[str, dict[str, CoreMetadata]] = {}
    extensions: dict[str, dict[str, Any]] = {}
    environments = set()
    kept: list[str] = []
    base = Snapshot(FROZEN / "index") if selected else None
    for case in cases():
        if selected and case.name not in selected:
            continue
        with BlockingIndex(lambda: IndexClient(ClientOptions(), Cache(None))) as live, tempfile.TemporaryDirectory() as out:
            recorder = Recorder(live, base)
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
        document, changes = merged(json.loads(path.read_text()), outcome(result), accept)
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"{case.name}: {sum(len(m['pins']) for m in document['expected'].values())} pins", file=sys.stderr)
        if changes:
            if not accept:
                kept.append(case.name)
            verb = "changed (accepted)" if accept else "would change; the recorded expectation is kept"
            print(f"{case.name}: its expectation {verb}:", *(f"  {line}" for line in changes), sep="\n", file=sys.stderr)
    _write_index(projects, metadata, environments, merge=bool(selected))
    for name, found in extensions.items():
        listed = {f: list(n) if n is not None else None for f, n in found.items()}
        _write(FROZEN / "index" / "extensions" / f"{name}.json", listed, merge=bool(selected))
    if kept:
        print(f"the snapshot was written, but the expectations of {', '.join(kept)} were not: review the changes "
              "above, then run again with --accept to record them", file=sys.stderr)
    return not kept


def _write_index(projects: Mapping[str, Project], metadata: Mapping[str, Mapping[str, CoreMetadata]], environments: set[Any],
                 merge: bool = False) -> None:
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
        path = FROZEN / "index" / "projects" / f"{name}.json"
        if merge and path.is_file():
            releases = _merged_releases(json.loads(path.read_text())["releases"], releases)
        _write(path, {"name": project.name, "releases": releases})
    for name, files in metadata.items():
        document = {
            filename: {"requires_dist": list(m.requires_dist), "requires_python": m.requires_python, "provides_extra": list(m.provides_extra)}
            for filename, m in sorted(files.items())
        }
        _write(FROZEN / "index" / "metadata" / f"{name}.json", document, merge=merge)


def _merged_releases(old: Mapping[str, list[Any]], new: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    merged = {version: list(rows) for version, rows in old.items()}
    for version, rows in new.items():
        known = {row[0] for row in merged.get(version, [])}
        merged.setdefault(version, []).extend(row for row in rows if row[0] not in known)
    return merged


def _write(path: Path, document: Any, merge: bool = False) -> None:
    if merge and path.is_file():
        document = {**json.loads(path.read_text()), **document}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    sys.exit(0 if freeze([a for a in arguments if a != "--accept"], accept="--accept" in arguments) else 1)
