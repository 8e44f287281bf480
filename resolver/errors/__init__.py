"""One exception root for everything the tool reports to a user.

Each error stores its fields, formats a one-paragraph message that says what to do next, and carries the
exit code the CLI uses: 1 stale or failed check, 2 usage/input error, 3 no CUDA detected,
4 resolution impossible, 5 index unreachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .display import escape, redact_text, shown_url


class CudaConstraintsError(Exception):
    """Root of every error the CLI turns into a message and an exit code."""

    exit_code = 1

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class UsageError(CudaConstraintsError):
    """A flag, a configuration value or an argument that cannot be used."""

    exit_code = 2

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem

    def message(self) -> str:
        return self.problem


class ConfigError(CudaConstraintsError):
    """A `[tool.cuda-constraints]` value that cannot be used, named by file, line (when found) and key."""

    exit_code = 2

    def __init__(self, path: Path, key: str, problem: str, line_number: int = 0) -> None:
        super().__init__(path, key, problem, line_number)
        self.path, self.key, self.problem, self.line_number = path, key, problem, line_number

    def message(self) -> str:
        where = f"{self.path}:{self.line_number}" if self.line_number else str(self.path)
        key = f" [tool.cuda-constraints] {self.key}:" if self.key else ""
        return f"{where}:{key} {self.problem}"


class RequirementsFileError(CudaConstraintsError):
    """A line of a requirements file that cannot be used, named by file and line number."""

    exit_code = 2

    def __init__(self, path: Path, line_number: int, line: str, problem: str) -> None:
        super().__init__(path, line_number, line, problem)
        self.path, self.line_number, self.line, self.problem = path, line_number, line, problem

    def message(self) -> str:
        location = f"{self.path}:{self.line_number}" if self.line_number else str(self.path)
        quoted = f": {self.line!r}" if self.line else ""
        return f"{location}{quoted}: {self.problem}"


class ConstraintsFileError(CudaConstraintsError):
    """A constraints file that cannot be read back (hand-edited or corrupt); `foreign` when it is not one
    at all (not text, or not a cuda-constraints header), which compile must never overwrite."""

    exit_code = 2

    def __init__(self, path: Path | str, line_number: int, line: str, problem: str, foreign: bool = False) -> None:
        super().__init__(path, line_number, line, problem)
        self.path, self.line_number, self.line, self.problem, self.foreign = path, line_number, line, problem, foreign

    def message(self) -> str:
        where = f"{self.path}:{self.line_number}" if self.line_number else str(self.path)
        quoted = f": {self.line!r}" if self.line else ""
        return (
            f"{where}{quoted}: {self.problem}. The file is generated; regenerate it with "
            "`cuda-constraints compile` instead of editing it."
        )


class NotOurFile(CudaConstraintsError):
    """A file where a constraints file would go that cuda-constraints did not write: never overwritten."""

    exit_code = 2

    def __init__(self, path: Path | str, line_number: int, problem: str) -> None:
        super().__init__(path, line_number, problem)
        self.path, self.line_number, self.problem = path, line_number, problem

    def message(self) -> str:
        where = f"{self.path}:{self.line_number}" if self.line_number else str(self.path)
        return (
            f"{where}: {self.problem}, so compile refuses to overwrite it. Move it away, or give another "
            "directory with -o; nothing was written."
        )


class ProjectNotFound(CudaConstraintsError):
    """A project no index has: fatal when the user's requirements name it; below them, the resolver takes
    it as a project without releases and backtracks (a failure names the chain that asked for it)."""

    exit_code = 2

    def __init__(
        self, name: str, where: str, answered_empty: Sequence[str] = (), origin: str = "", suggestions: Sequence[str] = ()
    ) -> None:
        super().__init__(name, where, answered_empty, origin, suggestions)
        self.name, self.where, self.answered_empty, self.origin = name, where, tuple(answered_empty), origin
        self.suggestions = tuple(suggestions)  # known names close to it, best first

    def absence(self) -> str:
        """`no project named 'x' on <index>`, with the indexes that answered an empty page."""
        empty = ""
        if self.answered_empty:
            shown = ", ".join(escape(redact_text(where)) for where in self.answered_empty)
            empty = f" ({shown} answered a page that lists no files of it: a login page, or a wrong index URL?)"
        return f"no project named {self.name!r} on {escape(redact_text(self.where))}{empty}"

    def message(self) -> str:
        where = f"{escape(self.origin)}: " if self.origin else ""
        near = f" Did you mean {' or '.join(escape(name) for name in self.suggestions)}?" if self.suggestions else ""
        return (
            f"{where}{self.absence()}.{near} "
            "Check the spelling in your requirements, "
            "or give the index that has it (--index-url, --extra-index-url, --find-links, or [tool.cuda-constraints])."
        )


class IndexUnavailable(CudaConstraintsError):
    """The index could not be reached, or answered with an error or with data that cannot be used."""

    exit_code = 5

    def __init__(self, url: str, problem: str, status: int | None = None) -> None:
        super().__init__(url, problem, status)
        self.url, self.problem, self.status = url, problem, status

    def message(self) -> str:
        status = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{shown_url(self.url)}: {status}{escape(self.problem)}"


class LimitExceeded(IndexUnavailable):
    """An answer larger (or deeper, or slower) than a limit allows; reading stopped there."""

    def __init__(self, url: str, happened: str, limit: int, what: str = "", unit: str = "") -> None:
        """`limit` counts bytes, or `unit`s when one is named (\"lines\")."""
        allowed = f"{limit:,} {unit}" if unit else _size(limit)
        super().__init__(url, f"{happened}: more than the {allowed} allowed for {what or 'one answer'}")
        self.limit = limit


def _size(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count:,} bytes"


class OfflineCacheMiss(IndexUnavailable):
    def __init__(self, url: str) -> None:
        super().__init__(url, "not in the cache and --offline forbids fetching it; run once online first")


class MetadataUnavailable(IndexUnavailable):
    """A release whose dependencies cannot be read without building or downloading a large file.

    The resolver treats such a release as unusable rather than failing the whole run.
    """


class InvalidMetadata(MetadataUnavailable):
    """A release whose metadata cannot be trusted (undecodable, an unparsable requirement, another name or
    version than the index lists): unusable, with a warning, never read as a shorter dependency list."""

    def __init__(self, url: str, filename: str, problem: str) -> None:
        super().__init__(url, f"cannot use the metadata of {filename}: {problem}")
        self.filename, self.reason = filename, problem


class MetadataMismatch(InvalidMetadata):
    """The metadata read from a file names another project or version than the index said."""

    def __init__(self, url: str, filename: str, expected: str, found: str) -> None:
        super().__init__(url, filename, f"it names {found}, the index lists the file as {expected}")
        self.expected, self.found = expected, found


class ResolutionFailed(CudaConstraintsError):
    """No set of releases fits the requirements for a CUDA major; `projects`: those the conflict involves
    (the requirements that could not be satisfied together, and the releases that asked for them)."""

    exit_code = 4

    def __init__(self, cuda_major: int, target: str, explanation: str, projects: frozenset[str] = frozenset()) -> None:
        super().__init__(cuda_major, target, explanation, projects)
        self.cuda_major, self.target, self.explanation, self.projects = cuda_major, target, explanation, projects

    def message(self) -> str:
        return f"CUDA {self.cuda_major} ({self.target}): cannot resolve the requirements.\n{self.explanation}"


class SeveralFailed(CudaConstraintsError):
    """More than one CUDA major failed: every one is reported, with the first one's exit code."""

    def __init__(self, errors: Sequence[CudaConstraintsError]) -> None:
        super().__init__(errors)
        self.errors = tuple(errors)
        self.exit_code = self.errors[0].exit_code

    def message(self) -> str:
        return "\n\n".join(dict.fromkeys(error.message() for error in self.errors))  # the same failure once


class NoMemberForMajor(CudaConstraintsError):
    """A meta package has no member for the CUDA major being resolved."""

    exit_code = 4

    def __init__(self, meta: str, cuda_major: int, member: str) -> None:
        super().__init__(meta, cuda_major, member)
        self.meta, self.cuda_major, self.member = meta, cuda_major, member

    def message(self) -> str:
        return (
            f"CUDA {self.cuda_major}: {self.meta} has no CUDA {self.cuda_major} member "
            f"({self.member} is not on the index). Drop {self.cuda_major} from --cuda, "
            "or wait until the project publishes it."
        )


class NoCudaDetected(CudaConstraintsError):
    exit_code = 3

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation

    def message(self) -> str:
        return self.explanation


class CheckFailed(CudaConstraintsError):
    """Committed constraints no longer match their inputs, or an install did not verify."""

    exit_code = 1

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems = problems

    def message(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True)
class Finding:
    """One thing `check` found wrong with a constraints file, and the command (or step) that fixes it."""

    path: str
    problem: str
    fix: str


class ConstraintsOutOfDate(CheckFailed):
    """Constraints files that no longer match their inputs, configuration or the family model."""

    headline = "is out of date"

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        super().__init__([f"{f.path}: {f.problem}" for f in self.findings])

    def message(self) -> str:
        by_path: dict[str, list[Finding]] = {}
        for finding in self.findings:
            by_path.setdefault(finding.path, []).append(finding)
        lines = []
        for path, findings in by_path.items():
            lines.append(f"{path} {self.headline}:")
            lines += [f"  - {f.problem}" for f in findings]
            lines += [f"  fix: {fix}" for fix in dict.fromkeys(f.fix for f in findings)]
        return "\n".join(lines)


class NewerReleasesAllowed(ConstraintsOutOfDate):
    """`check --online --strict`: the requirements allow releases newer than the pins."""

    headline = "would change with --upgrade"


class GitUnavailable(CudaConstraintsError):
    """`diff` could not read the constraints at git HEAD."""

    exit_code = 2

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path, self.problem = path, problem

    def message(self) -> str:
        return (
            f"{self.path}: {self.problem}. `cuda-constraints diff` compares git HEAD with the working tree; "
            "elsewhere give OLD and NEW (two directories or two files)."
        )


class WriteFailed(CudaConstraintsError):
    exit_code = 2

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(path, problem)
        self.path, self.problem = path, problem

    def message(self) -> str:
        return f"cannot write {self.path}: {self.problem}; the constraints files were left as they were"


class UnsafeValue(CudaConstraintsError):
    """A value that would break a written file's lines (a control character, a digest of the wrong shape):
    refused, since an index could use it to add a line or an option to a file a CI installs from."""

    exit_code = 5

    def __init__(self, what: str, value: str) -> None:
        super().__init__(what, value)
        self.what, self.value = what, value

    def message(self) -> str:
        shown = self.value if len(self.value) <= 80 else self.value[:77] + "..."
        return (
            f"refusing to write {self.what} {escape(shown)!r}: it would add a line or an option to the file. "
            "An index (or an input) supplied it; nothing was written."
        )


class LockTimeout(CudaConstraintsError):
    exit_code = 2

    def __init__(self, path: Path, seconds: float) -> None:
        super().__init__(path, seconds)
        self.path, self.seconds = path, seconds

    def message(self) -> str:
        return (
            f"{self.path} is locked by another cuda-constraints run (waited {self.seconds:g}s). "
            "Let it finish, or stop it, and run again."
        )


class ConstraintsMissing(CudaConstraintsError):
    """`install` found no constraints file for the CUDA major it is installing for."""

    exit_code = 2

    def __init__(self, path: Path, cuda_major: int) -> None:
        super().__init__(path, cuda_major)
        self.path, self.cuda_major = path, cuda_major

    def message(self) -> str:
        return (
            f"{self.path} does not exist: there are no constraints for CUDA {self.cuda_major}. "
            f"Run `cuda-constraints compile --cuda {self.cuda_major}` (or add {self.cuda_major} to `cuda` in "
            "[tool.cuda-constraints]) and commit the file, or pass --constraints-dir."
        )


class StaleConstraints(CudaConstraintsError):
    """A constraints file compiled from other inputs than the requirements `install` was given."""

    exit_code = 1

    def __init__(self, path: Path, recorded: str, current: str, inputs: tuple[str, ...]) -> None:
        super().__init__(path, recorded, current, inputs)
        self.path, self.recorded, self.current, self.inputs = path, recorded, current, inputs

    def message(self) -> str:
        return (
            f"{self.path} is stale: it records inputs with sha256 {self.recorded}, but the requirements "
            f"({', '.join(self.inputs)}) now hash to {self.current}. Run `cuda-constraints compile`, commit "
            "the result, and install again; nothing was installed."
        )


class FileDisagrees(CudaConstraintsError):
    """A file `install` refuses for what it says, `problems` each a phrase; `remedy`: what to do instead."""

    exit_code = 1
    remedy = ""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        super().__init__(path, problems)
        self.path, self.problems = path, tuple(problems)

    def message(self) -> str:
        return f"{self.path}: {'; '.join(escape(problem) for problem in self.problems)}. {self.remedy}"


class IndexesDisagree(FileDisagrees):
    """A constraints file whose `indexes` block names other indexes than the configuration gives: `install`
    asks only what the configuration gives, never an index from file text alone."""

    remedy = (
        "install asks only the indexes [tool.cuda-constraints], the requirements files and the environment give; "
        "add an index there (then compile), or run `cuda-constraints check` to see what changed. Nothing was installed."
    )


class WouldReplace(CudaConstraintsError):
    """`install` would replace packages the environment already holds (an image's own torch) that the
    requirements do not name."""

    exit_code = 1

    def __init__(self, path: str, major: int, replaced: Sequence[tuple[str, str, str]]) -> None:
        super().__init__(path, major, replaced)
        self.path, self.major, self.replaced = path, major, tuple(replaced)

    def message(self) -> str:
        lines = [f"installing with {self.path} would replace what this environment already has, which the requirements do not name:"]
        lines += [f"  {name} {installed} is installed; the file pins {name}=={pinned}" for name, installed, pinned in self.replaced]
        names = "|".join(name for name, _, _ in self.replaced)
        lines += [
            "Nothing was installed. Either compile with the environment's pins as constraints, so the file keeps them:",
            f"  pip freeze | grep -iE '^({names})==' > requirements/image-cu{self.major}.txt",
            f"  then `constraints = [\"requirements/image-cu{self.major}.txt\"]` in [tool.cuda-constraints.cuda.{self.major}] "
            "(or `cuda-constraints compile -c requirements/image-cuN.txt`), and compile;",
            "or let install replace them: cuda-constraints install --allow-replace",
        ]
        return "\n".join(lines)


class InstallFailed(CudaConstraintsError):
    """An installer command of `install` exited with an error."""

    exit_code = 1

    def __init__(self, command: str, returncode: int) -> None:
        super().__init__(command, returncode)
        self.command, self.returncode = command, returncode

    def message(self) -> str:
        return (
            f"the installer failed (exit {self.returncode}): {self.command}\n"
            "Its output above says why; `cuda-constraints install --dry-run` prints every command to rerun by hand."
        )


class CannotLock(CudaConstraintsError):
    """`compile --pylock` where a target would have no file with a sha256 to install: a lock file must
    hash every file it lists (a find-links directory gives none)."""

    exit_code = 2

    def __init__(self, pin: str, target: str, filename: str, source: str) -> None:
        super().__init__(pin, target, filename, source)
        self.pin, self.target, self.filename, self.source = pin, target, filename, source

    def message(self) -> str:
        where = f" ({shown_url(self.source)})" if self.source else ""
        return (
            f"cannot lock {self.pin} for {self.target}: no file it could install there has a sha256 "
            f"({escape(self.filename)!r}{where} has none), and a lock file hashes every file. Serve it from an index "
            "that gives sha256 hashes, or compile without --pylock (`pylock = false`); nothing was written."
        )


class LockDisagrees(FileDisagrees):
    """A lock file that does not say what the constraints file beside it says: `install` refuses it."""

    remedy = "Run `cuda-constraints compile` to regenerate both files, and commit them; nothing was installed."
