"""The lock file (PEP 751): its TOML writer against hostile values, its rendering and reading back, and
`compile --pylock`, `check` and `diff` over a synthetic index. packaging's own PEP 751 reader (`Pylock`)
validates every file written and selects from it per target, as an installer does."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.pylock import Pylock
from packaging.utils import canonicalize_name
from packaging.version import Version

from resolver.cli.main import main
from resolver.errors import ConstraintsFileError, UnsafeValue
from resolver.files import toml_text
from resolver.files.constraints import ConstraintsDocument, ExcludedLine, IndexLine, PinLine, SwapLine
from resolver.files.pylock import LockDocument, LockedFile, LockedPackage, disagreements, parse_lock, render_lock
from resolver.files.sets import read_file, read_lock
from resolver.model.families import FamilyTable
from resolver.model.targets import Environment, Platform, PythonVersion

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from .synthetic import BOTH_ARCHES, KV_REQUIREMENTS, SyntheticIndex, kv_connectors_index, served, write_project

SHA = "a" * 64
X86_WHEEL, ARM_WHEEL = BOTH_ARCHES
PYPROJECT = """\
[tool.cuda-constraints]
requirements = ["requirements/in.txt"]
cuda = [13]
index-url = "https://index.test/simple"
pylock = true
"""
TARGETS = [Environment(PythonVersion(3, 12), Platform(tag)) for tag in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64")]


# -- the TOML writer --------------------------------------------------------------------------------------------


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_a_string_parses_back_to_itself_on_one_line_whatever_it_holds(text):
    written = toml_text.string(text)
    assert "\n" not in written and "\r" not in written
    assert tomllib.loads(f"key = {written}\n") == {"key": text}


@pytest.mark.parametrize("text", [
    '"\n[tool.evil]\nkey = 1\n',
    'https://host/a"b\\c',
    "a\u2028b\u2029c\x85d",  # line separators and NEL: new lines to some editors and terminals
    "left\u202eright",  # a bidirectional override: hides what follows in a review
    "\x00\x1b[31m\x7f",
])
def test_hostile_text_is_escaped_into_one_value(text):
    written = toml_text.string(text)
    assert tomllib.loads(f"key = {written}\nafter = 2\n") == {"key": text, "after": 2}
    assert not any(character in written for character in "\n\r\x85\u2028\u2029\u202e\x00\x1b\x7f")


def test_a_lone_surrogate_is_refused():
    with pytest.raises(UnsafeValue):
        toml_text.string("a\ud800b")


def test_a_date_time_is_written_in_utc():
    moment = datetime(2025, 1, 25, 12, 30, 10, 164985, tzinfo=timezone.utc)
    assert toml_text.date_time(moment) == "2025-01-25T12:30:10.164985Z"
    assert tomllib.loads(f"t = {toml_text.date_time(moment)}")["t"] == moment
    assert toml_text.date_time(datetime(1, 1, 1)) == "0001-01-01T00:00:00Z"


# -- rendering and reading back ---------------------------------------------------------------------------------


def header(**fields) -> ConstraintsDocument:
    values = {"cuda_major": 13, "command": "cuda-constraints compile --pylock", "inputs": ("requirements/in.txt",),
              "digest": "0123456789abcdef", "targets": "cp312 manylinux_2_28 x86_64, aarch64"}
    return ConstraintsDocument(**{**values, **fields})


def lock(*packages: LockedPackage, **fields) -> LockDocument:
    return LockDocument(header(**fields), ("python_version == '3.12'",), "==3.12.*", packages)


def test_hostile_values_stay_values_and_no_credential_is_written():
    hostile_url = 'https://user:secret@files.test/a"b\n[tool.evil]\nx = 1/pkg-1.0-py3-none-any.whl?token=t0ken-value&v=1#sha256=' + SHA
    wheel = LockedFile('pkg-1.0-py3-none-any.whl"\n[[packages]]', hostile_url, SHA, 12, datetime(2026, 1, 1, tzinfo=timezone.utc))
    package = LockedPackage(canonicalize_name("pkg"), Version("1.0"), "", "https://me:pw@index.test/simple", (wheel,))
    document = lock(package, options='--index-url "https://index.test/simple"\n[tool.evil]',
                    excluded=(ExcludedLine('nixl-cu12"]', "nixl==1.5.1\n"),))
    text = render_lock(document)
    data = tomllib.loads(text)
    assert set(data) == {"lock-version", "environments", "requires-python", "created-by", "packages", "tool"}
    assert set(data["tool"]) == {"cuda-constraints"} and len(data["packages"]) == 1
    (written,) = data["packages"][0]["wheels"]
    assert written == {
        "name": 'pkg-1.0-py3-none-any.whl"\n[[packages]]',
        # urllib drops a URL's line breaks as it reads one (as browsers do); the quote stays, inside the value
        "url": 'https://files.test/a"b[tool.evil]x = 1/pkg-1.0-py3-none-any.whl?token=****&v=1',
        "size": 12,
        "upload-time": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "hashes": {"sha256": SHA},
    }
    assert data["packages"][0]["index"] == "https://index.test/simple"
    assert data["tool"]["cuda-constraints"]["excluded"] == [{"name": 'nixl-cu12"]', "required-by": "nixl==1.5.1\n"}]
    assert not any(secret in text for secret in ("secret", "user", "t0ken-value", "me:", "pw@"))
    read_back = LockedPackage(package.name, package.version, "", "https://index.test/simple",
                              (LockedFile(wheel.name, written["url"], SHA, 12, wheel.uploaded),))
    assert parse_lock(text, "pylock.cu13.toml") == replace(document, packages=(read_back,))


@pytest.mark.parametrize("digest", ["A" * 64, "a" * 63, SHA + "\n--hash=sha256:" + SHA, "g" * 64])
def test_a_digest_of_another_shape_is_refused(digest):
    wheel = LockedFile("pkg-1.0-py3-none-any.whl", "https://files.test/pkg-1.0-py3-none-any.whl", digest)
    with pytest.raises(UnsafeValue):
        render_lock(lock(LockedPackage(canonicalize_name("pkg"), Version("1.0"), wheels=(wheel,))))


def test_a_size_that_is_no_number_is_left_out():
    wheel = LockedFile("pkg-1.0-py3-none-any.whl", "https://files.test/pkg-1.0-py3-none-any.whl", SHA, True)  # type: ignore[arg-type]
    data = tomllib.loads(render_lock(lock(LockedPackage(canonicalize_name("pkg"), Version("1.0"), wheels=(wheel,)))))
    assert "size" not in data["packages"][0]["wheels"][0]


def test_a_document_reads_back_as_written_and_a_hand_edit_is_seen():
    def wheels(version: str) -> tuple[LockedFile, ...]:
        return tuple(LockedFile(f"pkg-{version}-{tag}.whl", f"https://files.test/pkg-{version}-{tag}.whl", SHA) for tag in BOTH_ARCHES)

    sdist = LockedFile("pkg-1.0.tar.gz", "https://files.test/pkg-1.0.tar.gz", "b" * 64, 10)
    packages = (
        LockedPackage(canonicalize_name("pkg"), Version("1.0"), "platform_machine == 'x86_64'", "https://index.test/simple", wheels("1.0"), sdist),
        LockedPackage(canonicalize_name("pkg"), Version("0.9"), "platform_machine == 'aarch64'", "", wheels("0.9")),
    )
    document = lock(*packages, indexes=(IndexLine("default", "https://index.test/simple", ("pkg",)),),
                    swapped=(SwapLine("a>=1", "b>=1", "requirements/in.txt:3"),), input_digests=(("requirements/in.txt", "1" * 16),))
    text = render_lock(document)
    read = parse_lock(text, "pylock.cu13.toml")
    assert read == document and read.hand_edited is False
    assert render_lock(read) == text
    assert parse_lock(text.replace('version = "0.9"', 'version = "0.8"'), "x").hand_edited is True
    Pylock.from_dict(tomllib.loads(text))  # valid PEP 751, as packaging reads it


@pytest.mark.parametrize("text", ["not toml = = 1", 'lock-version = "1.0"\ncreated-by = "uv"\n[[packages]]\nname = "a"\n'])
def test_a_file_another_tool_wrote_is_foreign(text):
    with pytest.raises(ConstraintsFileError) as raised:
        parse_lock(text, "pylock.cu13.toml")
    assert raised.value.foreign


def test_disagreements_name_each_pin_that_differs():
    txt = header(pins=(
        PinLine(canonicalize_name("a"), Version("1.0")), PinLine(canonicalize_name("b"), Version("2.0"), 'platform_machine == "x86_64"'),
    ))
    wheel = (LockedFile("a-1.1-py3-none-any.whl", "https://files.test/a", SHA),)
    same = lock(LockedPackage(canonicalize_name("a"), Version("1.0"), wheels=wheel),
                LockedPackage(canonicalize_name("b"), Version("2.0"), "platform_machine == 'x86_64'", wheels=wheel))
    assert disagreements(same, txt, "cu13.txt") == []
    other = lock(LockedPackage(canonicalize_name("a"), Version("1.1"), wheels=wheel),
                 LockedPackage(canonicalize_name("c"), Version("1.0"), wheels=wheel), digest="fedcba9876543210")
    assert disagreements(other, txt, "cu13.txt") == [
        "its inputs (sha256 fedcba9876543210) are not those of cu13.txt (sha256 0123456789abcdef)",
        "its pins are not cu13.txt's: a 1.1 in the lock, 1.0 in cu13.txt; b==2.0 ; platform_machine == \"x86_64\" only in "
        "cu13.txt; c==1.0 only in the lock",
    ]
    assert disagreements(replace(same, header=header(options="--pre")), txt, "cu13.txt") == ["its options are '--pre', cu13.txt's ''"]
    excluding = replace(same, header=header(excluded=(ExcludedLine("nixl-cu12", "nixl==1.5.1"),)))
    assert disagreements(excluding, txt, "cu13.txt") == ["its exclusions or swaps are not cu13.txt's"]
    hashed = replace(txt, pins=(replace(txt.pins[0], hashes=("b" * 64,)), txt.pins[1]))  # --generate-hashes
    assert disagreements(same, hashed, "cu13.txt") == [
        "its pins are not cu13.txt's: a==1.0: the lock's files have other sha256 hashes than cu13.txt gives"
    ]
    assert disagreements(same, replace(hashed, pins=(replace(txt.pins[0], hashes=(SHA,)), txt.pins[1])), "cu13.txt") == []


# -- compile --pylock -------------------------------------------------------------------------------------------


@pytest.fixture
def index():
    with served(SyntheticIndex()) as index:
        yield index


@pytest.fixture
def repo(tmp_path: Path, inside) -> Path:
    return inside(write_project(tmp_path, PYPROJECT, requirements={}))


def requirements(repo: Path, text: str) -> None:
    (repo / "requirements" / "in.txt").write_text(text)


def sha256(index: SyntheticIndex, filename: str) -> str:
    return hashlib.sha256(index.file_bytes(filename) or b"").hexdigest()


def locked_files(repo: Path, major: int = 13) -> dict[str, dict[str, str]]:
    """name ; marker -> {filename: sha256} of every file the lock lists."""
    document = read_lock(repo / "constraints" / f"pylock.cu{major}.toml").document
    return {
        package.name + (f" ; {package.marker}" if package.marker else ""):
        {file.name: file.sha256 for file in (*package.wheels, *((package.sdist,) if package.sdist else ()))}
        for package in document.packages
    }


def selected(text: str, environment: Environment) -> dict[str, tuple[str, str]]:
    """What packaging's PEP 751 installer logic takes from a lock for one target: name -> (version, file)."""
    tags = [tag for tag, _ in sorted(environment.tag_priority.items(), key=lambda item: item[1])]
    lock = Pylock.from_dict(tomllib.loads(text))
    return {package.name: (str(package.version), chosen.filename) for package, chosen in
            lock.select(environment={**environment.markers, "python_full_version": f"{environment.python}.0"}, tags=tags)}


def test_the_lock_lists_every_pin_with_each_file_an_installer_may_take(index, repo):
    native = index.add("native", "1.0", tags=(*BOTH_ARCHES, "cp312-cp312-manylinux_2_34_x86_64", "cp311-cp311-manylinux_2_28_x86_64"))
    index.add("pure", "1.0")
    lopsided = index.add("lopsided", "1.0", tags=(X86_WHEEL,), sdist=True)  # aarch64 builds it from source
    index.add("app", "1.0", ['tritonish ; platform_machine == "x86_64"'], tags=BOTH_ARCHES)
    tritonish = index.add("tritonish", "3.0", tags=(X86_WHEEL,))
    requirements(repo, "native\npure\nlopsided\napp\n")
    assert main(["compile", "-q", "--no-cache", "--allow-sdist-package", "lopsided"]) == 0
    assert locked_files(repo) == {
        "app": {f"app-1.0-{tag}.whl": sha256(index, f"app-1.0-{tag}.whl") for tag in BOTH_ARCHES},
        "lopsided": {name: sha256(index, name) for name in (lopsided.wheel_filename(X86_WHEEL), lopsided.sdist_filename)},
        "native": {native.wheel_filename(tag): sha256(index, native.wheel_filename(tag)) for tag in BOTH_ARCHES},
        "pure": {"pure-1.0-py3-none-any.whl": sha256(index, "pure-1.0-py3-none-any.whl")},
        "tritonish ; platform_machine == 'x86_64'": {tritonish.wheel_filename(X86_WHEEL): sha256(index, tritonish.wheel_filename(X86_WHEEL))},
    }
    text = (repo / "constraints" / "pylock.cu13.toml").read_text()
    data = tomllib.loads(text)
    assert data["environments"] == [
        f"python_version == '3.12' and sys_platform == 'linux' and platform_machine == '{machine}'" for machine in ("aarch64", "x86_64")
    ]
    assert data["requires-python"] == "==3.12.*" and data["created-by"] == "cuda-constraints"
    pure = next(p for p in data["packages"] if p["name"] == "pure")
    assert pure["index"] == "https://index.test/simple"
    assert pure["wheels"][0]["url"] == "https://index.test/packages/pure-1.0-py3-none-any.whl"
    assert pure["wheels"][0]["size"] == len(index.file_bytes("pure-1.0-py3-none-any.whl"))
    assert pure["wheels"][0]["upload-time"] == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert data["tool"]["cuda-constraints"]["builds-from-source"] == [{"name": "lopsided", "version": "1.0", "platforms": "manylinux_2_28_aarch64"}]
    # Per target, PEP 751's selection (packaging's) takes exactly the constraints file's pins, the sdist
    # where the target builds from source.
    constraints = read_file(repo / "constraints" / "cu13.txt").document
    for environment in TARGETS:
        chosen = selected(text, environment)
        assert {name: version for name, (version, _) in chosen.items()} == {
            name: str(version) for name, version in constraints.pins_for(environment.markers).items()
        }
        expected = lopsided.sdist_filename if environment.platform.machine == "aarch64" else lopsided.wheel_filename(X86_WHEEL)
        assert chosen["lopsided"][1] == expected
        assert chosen["native"][1] == native.wheel_filename(X86_WHEEL if environment.platform.machine == "x86_64" else ARM_WHEEL)


def test_with_generate_hashes_the_lock_holds_exactly_the_hashed_files(index, repo):
    index.add("native", "1.0", tags=(*BOTH_ARCHES, "cp312-cp312-win_amd64"), sdist=True)
    index.add("lopsided", "1.0", tags=(X86_WHEEL,), sdist=True)
    requirements(repo, "native\nlopsided\n")
    assert main(["compile", "-q", "--no-cache", "--generate-hashes", "--allow-sdist-package", "lopsided"]) == 0
    constraints = read_file(repo / "constraints" / "cu13.txt").document
    lock_document = read_lock(repo / "constraints" / "pylock.cu13.toml").document
    assert all(pin.hashes for pin in constraints.pins)
    assert disagreements(lock_document, constraints, "cu13.txt") == []


def test_a_major_lock_leaves_out_the_other_majors_members_and_records_the_header(tmp_path, inside):
    with served(kv_connectors_index()):
        root = inside(write_project(tmp_path, PYPROJECT.replace("requirements/in.txt", "requirements/kv.txt").replace("cuda = [13]", "cuda = [12, 13]"),
                                    {"kv.txt": KV_REQUIREMENTS}))
        assert main(["compile", "-q", "--no-cache"]) == 0
    families = FamilyTable()
    for major in (12, 13):
        lock_document = read_lock(root / "constraints" / f"pylock.cu{major}.toml").document
        constraints = read_file(root / "constraints" / f"cu{major}.txt").document
        assert disagreements(lock_document, constraints, "cu.txt") == []
        assert all(families.fits(p.name, p.version, major) for p in lock_document.packages)
        assert f"nixl-cu{25 - major}" not in {p.name for p in lock_document.packages}
        assert lock_document.header.excluded == (ExcludedLine(f"nixl-cu{25 - major}", "nixl==1.5.1"),)
        assert lock_document.header.swapped == constraints.swapped and constraints.swapped
        Pylock.from_dict(tomllib.loads((root / "constraints" / f"pylock.cu{major}.toml").read_text()))


def test_a_lock_is_deterministic_and_an_unchanged_one_is_not_rewritten(index, repo, capsys):
    index.add("pure", "1.0")
    index.add("native", "1.0", tags=BOTH_ARCHES)
    requirements(repo, "pure\nnative\n")
    assert main(["compile", "-q", "--no-cache"]) == 0
    path = repo / "constraints" / "pylock.cu13.toml"
    first, stamp = path.read_bytes(), path.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["compile", "-q", "--no-cache", "--upgrade"]) == 0
    assert path.read_bytes() == first and path.stat().st_mtime_ns == stamp
    assert "CUDA 13: constraints/pylock.cu13.toml unchanged" in capsys.readouterr().out


def test_dry_run_and_a_failed_major_write_no_lock(index, repo, capsys):
    index.add("pure", "1.0")
    requirements(repo, "pure\n")
    assert main(["compile", "-q", "--no-cache", "--dry-run"]) == 0
    assert "pylock.cu13.toml would be created (dry run)" in capsys.readouterr().out
    assert not (repo / "constraints" / "pylock.cu13.toml").exists()
    requirements(repo, "pure\nmissing-project\n")
    assert main(["compile", "-q", "--no-cache"]) != 0
    assert not (repo / "constraints" / "pylock.cu13.toml").exists() and not (repo / "constraints" / "cu13.txt").exists()


def test_a_target_without_a_hashed_file_cannot_be_locked(index, repo, capsys):
    index.add("pure", "1.0")
    links = repo / "wheels"
    links.mkdir()
    (links / "pure-1.0-py3-none-any.whl").write_bytes(index.file_bytes("pure-1.0-py3-none-any.whl"))
    requirements(repo, "pure\n")
    assert main(["compile", "-q", "--no-cache", "--no-index", "--find-links", "wheels"]) == 2
    err = capsys.readouterr().err
    assert "cannot lock pure==1.0 for cp312 manylinux_2_28_aarch64" in err and "has none" in err
    assert not (repo / "constraints").exists() or not any((repo / "constraints").glob("*.t*"))


def test_a_pin_from_a_find_links_page_names_no_index_and_its_url_no_fragment(index, repo):
    index.add("pure", "1.0")
    index.links_page = "/releases/links.html"
    requirements(repo, "pure\n")
    assert main(["compile", "-q", "--no-cache", "--no-index", "--find-links", "https://index.test/releases/links.html"]) == 0
    (package,) = tomllib.loads((repo / "constraints" / "pylock.cu13.toml").read_text())["packages"]
    assert "index" not in package
    assert package["wheels"][0]["url"] == "https://index.test/packages/pure-1.0-py3-none-any.whl"  # no #sha256=…
    assert package["wheels"][0]["hashes"] == {"sha256": sha256(index, "pure-1.0-py3-none-any.whl")}


def test_a_lock_file_another_tool_wrote_is_never_overwritten(index, repo, capsys):
    index.add("pure", "1.0")
    requirements(repo, "pure\n")
    (repo / "constraints").mkdir()
    theirs = 'lock-version = "1.0"\ncreated-by = "uv"\n'
    (repo / "constraints" / "pylock.cu13.toml").write_text(theirs)
    assert main(["compile", "-q", "--no-cache"]) == 2
    assert "not a lock file cuda-constraints wrote" in capsys.readouterr().err
    assert (repo / "constraints" / "pylock.cu13.toml").read_text() == theirs
    assert not (repo / "constraints" / "cu13.txt").exists()


def test_without_pylock_a_lock_left_behind_is_named_when_its_file_changes(index, repo, capsys):
    index.add("pure", "1.0")
    requirements(repo, "pure\n")
    assert main(["compile", "-q", "--no-cache"]) == 0
    (repo / "pyproject.toml").write_text(PYPROJECT.replace("pylock = true\n", ""))
    index.add("pure", "1.1")
    capsys.readouterr()
    assert main(["compile", "-q", "--no-cache", "--upgrade"]) == 0
    assert "constraints/pylock.cu13.toml is left as it was (pylock is not set)" in capsys.readouterr().err


# -- check and diff ---------------------------------------------------------------------------------------------


@pytest.fixture
def compiled(index, repo):
    index.add("pure", "1.0")
    index.add("native", "1.0", tags=BOTH_ARCHES)
    requirements(repo, "pure\nnative\n")
    assert main(["compile", "-q", "--no-cache"]) == 0
    return repo


def check(capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["check"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rewrite_lock(repo: Path, change) -> None:
    """A lock file saying something else, with a content digest that matches (not a hand edit)."""
    path = repo / "constraints" / "pylock.cu13.toml"
    path.write_text(render_lock(change(read_lock(path).document)))


def test_check_passes_a_current_lock(compiled, capsys):
    code, out, _ = check(capsys)
    assert code == 0 and "constraints/pylock.cu13.toml: up to date" in out


def test_check_finds_a_hand_edited_lock(compiled, capsys):
    path = compiled / "constraints" / "pylock.cu13.toml"
    path.write_text(path.read_text().replace('"pure"', '"purer"'))
    code, _, err = check(capsys)
    assert code == 1 and "constraints/pylock.cu13.toml is out of date" in err and "was edited by hand" in err


def test_check_finds_a_lock_whose_inputs_changed(compiled, capsys):
    requirements(compiled, "pure\nnative>=1.0\n")
    code, _, err = check(capsys)
    assert code == 1
    assert "constraints/pylock.cu13.toml is out of date" in err and "constraints/cu13.txt is out of date" in err
    assert err.count("the inputs changed since it was generated") == 2


def test_check_finds_a_lock_that_disagrees_with_its_constraints_file(compiled, capsys):
    def older_pure(document: LockDocument) -> LockDocument:
        packages = tuple(LockedPackage(p.name, Version("0.9"), p.marker, p.index, p.wheels) if p.name == "pure" else p for p in document.packages)
        return LockDocument(document.header, document.environments, document.requires_python, packages)

    rewrite_lock(compiled, older_pure)
    code, _, err = check(capsys)
    assert code == 1 and "was edited by hand" not in err
    assert "its pins are not constraints/cu13.txt's: pure 0.9 in the lock, 1.0 in constraints/cu13.txt" in err


def test_check_finds_a_missing_lock_and_one_nothing_writes(compiled, capsys):
    lock_path = compiled / "constraints" / "pylock.cu13.toml"
    text = lock_path.read_text()
    lock_path.unlink()
    code, _, err = check(capsys)
    assert code == 1 and "constraints/pylock.cu13.toml is out of date" in err and "is missing" in err
    lock_path.write_text(text)
    (compiled / "pyproject.toml").write_text(PYPROJECT.replace("pylock = true\n", ""))
    code, _, err = check(capsys)
    assert code == 1 and "is not written by the command of constraints/cu13.txt (pylock is not set)" in err
    (compiled / "constraints" / "cu13.txt").unlink()
    code, _, err = check(capsys)
    assert code == 1 and "has no cu13.txt beside it" in err


def test_diff_shows_a_lock_added_a_file_whose_hash_changed_and_a_disagreement(compiled, capsys):
    def git(*arguments: str) -> None:
        subprocess.run(["git", *arguments], cwd=compiled, check=True, capture_output=True)

    git("init", "-q")
    git("add", "pyproject.toml", "requirements", "constraints/cu13.txt")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "constraints")
    capsys.readouterr()
    assert main(["diff"]) == 0
    assert "  lock        + constraints/pylock.cu13.toml added (2 packages)" in capsys.readouterr().out
    git("add", "constraints/pylock.cu13.toml")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "lock")

    def swapped_file(document: LockDocument) -> LockDocument:
        packages = tuple(
            LockedPackage(p.name, Version("0.9") if p.name == "pure" else p.version, p.marker, p.index,
                          tuple(LockedFile(w.name, w.url.replace("index.test", "elsewhere.test"), "f" * 64, w.size, w.uploaded)
                                for w in p.wheels))
            for p in document.packages
        )
        return LockDocument(document.header, document.environments, document.requires_python, packages)

    rewrite_lock(compiled, swapped_file)
    capsys.readouterr()
    assert main(["diff"]) == 0
    out = capsys.readouterr().out
    native = f"native-1.0-{X86_WHEEL}.whl"
    assert f"  lock        ~ native==1.0: {native} has another sha256 (ffffffffffffffff…, was " in out
    assert f"  lock        ~ native==1.0: {native} is now downloaded from elsewhere.test (was index.test)" in out
    assert "  lock        ! constraints/pylock.cu13.toml: its pins are not constraints/cu13.txt's: pure 0.9 in the lock" in out
    (compiled / "constraints" / "pylock.cu13.toml").unlink()
    capsys.readouterr()
    assert main(["diff", "--format", "markdown"]) == 0
    assert "| lock | - HEAD:constraints/pylock.cu13.toml removed |" in capsys.readouterr().out



# -- this repository's lock files -------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("major", [12, 13])
def test_the_committed_locks_are_valid_and_select_exactly_the_committed_pins(major):
    text = (ROOT / "constraints" / f"pylock.cu{major}.toml").read_text()
    lock_document = parse_lock(text, f"pylock.cu{major}.toml")
    constraints = read_file(ROOT / "constraints" / f"cu{major}.txt").document
    assert lock_document.hand_edited is False and disagreements(lock_document, constraints, "cu.txt") == []
    for environment in TARGETS:
        chosen = selected(text, environment)
        assert {name: version for name, (version, _) in chosen.items()} == {
            name: str(version) for name, version in constraints.pins_for(environment.markers).items()
        }
    assert "lmcache" in {p.name for p in lock_document.packages if p.sdist is not None} or major == 13
