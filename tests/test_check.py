"""`check`: every kind of staleness fails with exit 1 naming the file and the command that fixes it;
offline means no request at all; `--online` lists what `compile --upgrade` would change."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver.cli.main import main
from resolver.commands.check import swap_problems
from resolver.files.constraints import ConstraintsDocument, SwapLine
from resolver.resolve.swaps import MajorInput

from .synthetic import (
    BOTH_ARCHES,
    KV_REQUIREMENTS,
    PYPROJECT,
    kv_connectors_index,
    served,
    write_project,
)

KV = KV_REQUIREMENTS


@pytest.fixture
def index():
    with served(kv_connectors_index()) as index:
        yield index


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """A project compiled once against the synthetic index; each test works on a copy."""
    root = write_project(tmp_path_factory.mktemp("compiled"))
    with served(kv_connectors_index()), pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(root)
        assert main(["compile", "-q", "--no-cache"]) == 0
    return root


@pytest.fixture
def repo(tmp_path: Path, inside, index, compiled) -> Path:
    shutil.copytree(compiled, tmp_path, dirs_exist_ok=True)
    return inside(tmp_path)


def edit(repo: Path, major: int, old: str, new: str) -> None:
    path = repo / "constraints" / f"cu{major}.txt"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def configure(repo: Path, extra: str) -> None:
    (repo / "pyproject.toml").write_text(PYPROJECT + extra)


def failed_check(capsys, *arguments: str) -> str:
    assert main(["check", *arguments]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_fresh_files_pass_without_any_request(index, repo, capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "constraints/cu12.txt: up to date (CUDA 12," in out and "constraints/cu13.txt: up to date (CUDA 13," in out
    assert index.requests == []


def test_a_new_requirement_line_makes_every_file_stale(repo, capsys):
    with (repo / "requirements" / "kv.txt").open("a") as handle:
        handle.write("numpy >= 3\n")
    err = failed_check(capsys)
    for major in (12, 13):
        assert f"constraints/cu{major}.txt is out of date:" in err
    assert "the inputs changed since it was generated: requirements/kv.txt changed\n" in err and "sha256" not in err
    assert "numpy==2.2.6 violates the requirement numpy>=3 (requirements/kv.txt:5) on every target" in err
    assert err.count("  fix: cuda-constraints compile\n") == 2


def test_an_included_file_is_an_input_too(repo, capsys):
    (repo / "requirements" / "kv.txt").write_text(KV + "-c limits.txt\n")
    (repo / "requirements" / "limits.txt").write_text("numpy < 3\n")
    assert main(["compile", "-q"]) == 0
    assert main(["check"]) == 0
    (repo / "requirements" / "limits.txt").write_text("numpy < 2\n")
    err = failed_check(capsys)
    assert "the inputs changed since it was generated: requirements/limits.txt changed\n" in err
    assert "numpy==2.2.6 violates the constraint numpy<2 (requirements/limits.txt:1) on every target" in err


def test_the_input_that_changed_is_named_among_several(repo, capsys):
    (repo / "requirements" / "kv.txt").write_text(KV + "-r common.txt\n")
    (repo / "requirements" / "common.txt").write_text("numpy\n")
    configure(repo, "[tool.cuda-constraints.families.deepep]\nmembers = 'deep-ep-cu{major}'\n")
    assert main(["compile", "-q"]) == 0
    assert "# input digests: requirements/kv.txt " in (repo / "constraints" / "cu13.txt").read_text()
    (repo / "requirements" / "common.txt").write_text("numpy >= 2\n")
    err = failed_check(capsys)
    assert "the inputs changed since it was generated: requirements/common.txt changed\n" in err and "sha256" not in err
    (repo / "requirements" / "common.txt").write_text("numpy\n")
    configure(repo, "[tool.cuda-constraints.families.deepep]\nmembers = 'deep-ep-cuda{major}'\n")
    err = failed_check(capsys)
    assert ("the inputs changed since it was generated: the configuration in pyproject.toml ([tool.cuda-constraints]) "
            "changed\n") in err


def test_a_majors_digest_covers_only_its_own_table(repo, capsys):
    tables = "[tool.cuda-constraints.cuda.12]\n{}\n[tool.cuda-constraints.cuda.13]\n"
    configure(repo, tables.format(""))
    assert main(["compile", "-q"]) == 0
    cu13 = (repo / "constraints" / "cu13.txt").read_bytes()
    configure(repo, tables.format('constraints = ["requirements/numpy.txt"]'))
    (repo / "requirements" / "numpy.txt").write_text("numpy < 3\n")
    err = failed_check(capsys)
    assert "constraints/cu12.txt is out of date" in err and "cu13.txt" not in err
    capsys.readouterr()
    assert main(["compile", "-q"]) == 0
    assert (repo / "constraints" / "cu13.txt").read_bytes() == cu13  # the CUDA 13 file is not rewritten


def test_a_file_written_with_the_earlier_content_wording_asks_to_be_regenerated(repo, capsys):
    edit(repo, 13, "(of every other line; `cuda-constraints check` fails when one is edited)",
         "(edited by hand, this file fails `cuda-constraints check`)")
    err = failed_check(capsys)
    assert ("constraints/cu13.txt is out of date:\n  - its header was written by an earlier release of cuda-constraints "
            "(the `content:` line's old wording)\n  fix: cuda-constraints compile\n") in err
    assert "edited by hand" not in err and "cu12.txt" not in err
    assert main(["compile", "-q"]) == 0 and main(["check"]) == 0


def test_other_input_files_in_the_configuration(repo, capsys):
    (repo / "requirements" / "other.txt").write_text(KV)
    (repo / "pyproject.toml").write_text(PYPROJECT.replace("requirements/kv.txt", "requirements/other.txt"))
    err = failed_check(capsys)
    assert "its inputs were requirements/kv.txt; its command now reads requirements/other.txt" in err


def test_a_header_command_with_flags_is_checked_as_that_command(repo, capsys):
    (repo / "requirements" / "other.txt").write_text("numpy\n")
    assert main(["compile", "-q", "-r", "requirements/other.txt", "--cuda", "13"]) == 0
    assert main(["check"]) == 0
    (repo / "requirements" / "other.txt").write_text("numpy\ncupy-cuda13x\n")
    err = failed_check(capsys)
    assert "constraints/cu13.txt is out of date:" in err and "constraints/cu12.txt is out of date" not in err
    assert "fix: cuda-constraints compile -r requirements/other.txt --cuda 13\n" in err
    assert "cupy-cuda13x (requirements/other.txt:2) is required but cupy-cuda13x is not pinned on every target" in err


def test_changed_targets(repo, capsys):
    configure(repo, 'platforms = ["manylinux_2_28_x86_64"]\n')
    err = failed_check(capsys)
    assert "its targets are 'cp312 manylinux_2_28 x86_64, aarch64'; the configuration now gives 'cp312 manylinux_2_28 x86_64'" in err


def test_changed_options(repo, capsys):
    configure(repo, "generate-hashes = true\n")
    err = failed_check(capsys)
    assert "its options changed: --generate-hashes added\n" in err
    configure(repo, 'exclude-newer = "2026-02-01"\n')
    assert main(["compile", "-q"]) == 0
    configure(repo, 'exclude-newer = "2026-03-01"\n')
    assert "its options changed: --exclude-newer 2026-03-01T23:59:59Z (was 2026-02-01T23:59:59Z)\n" in failed_check(capsys)


def test_a_configured_major_without_a_file(repo, capsys):
    (repo / "constraints" / "cu12.txt").unlink()
    err = failed_check(capsys)
    assert "constraints/cu12.txt is out of date:\n  - is missing: CUDA 12 is configured" in err
    assert "fix: cuda-constraints compile\n" in err
    configure(repo, "cuda = [12, 13, 14]\n")
    assert "constraints/cu14.txt is out of date:\n  - is missing: CUDA 14 is configured" in failed_check(capsys)


def test_a_file_for_a_major_no_longer_configured(repo, capsys):
    configure(repo, "cuda = [13]\n")
    err = failed_check(capsys)
    assert "CUDA 12 is not among the majors its command resolves (13)" in err
    assert "fix: delete constraints/cu12.txt, or add 12 to `cuda` in [tool.cuda-constraints]" in err
    assert "cu13.txt is out of date" not in err


def test_a_pin_moved_by_hand_violates_the_swapped_requirement(repo, capsys):
    edit(repo, 12, "cupy-cuda12x==14.2.0", "cupy-cuda12x==14.1.0")
    err = failed_check(capsys)
    assert "cupy-cuda12x==14.1.0 violates the requirement cupy-cuda12x!=14.1.0 (requirements/kv.txt:2) on every target" in err
    assert "the inputs changed" not in err and "cu13.txt" not in err


def test_a_requirement_missing_on_one_target(repo, capsys):
    edit(repo, 13, "nixl==1.5.1\n", 'nixl==1.5.1 ; platform_machine == "x86_64"\n')
    err = failed_check(capsys)
    assert "nixl>=1.1.0 (requirements/kv.txt:3) is required but nixl is not pinned on cp312 manylinux_2_28_aarch64" in err


def test_a_package_of_another_major_inside(repo, capsys):
    edit(repo, 12, "nixl-cu12==1.5.1\n", "nixl-cu12==1.5.1\n    # via nixl\nnixl-cu13==1.5.1\n")
    # A version-major family: the pinned version says which major it is.
    edit(repo, 13, "cuda-python==13.4.4", "cuda-python==12.9.4")
    err = failed_check(capsys)
    assert "nixl-cu13==1.5.1 is a CUDA 13 package, in the CUDA 12 file" in err
    assert "cuda-python==12.9.4 is a CUDA 12 package, in the CUDA 13 file" in err


def test_a_header_for_another_major(repo, capsys):
    (repo / "constraints" / "cu14.txt").write_text((repo / "constraints" / "cu13.txt").read_text())
    configure(repo, "cuda = [12, 13, 14]\n")
    err = failed_check(capsys)
    assert "constraints/cu14.txt is out of date:\n  - its header is for CUDA 13, but the file name says CUDA 14" in err


def test_an_unreadable_header_command(repo, capsys):
    edit(repo, 13, "#   cuda-constraints compile\n", "#   cuda-constraints compile --frobnicate\n")
    err = failed_check(capsys)
    assert "its header command 'cuda-constraints compile --frobnicate' cannot be read (unrecognized arguments: --frobnicate)" in err
    assert "fix: cuda-constraints compile\n" in err


def test_a_corrupt_file_exits_2_naming_file_and_line(repo, capsys):
    edit(repo, 13, "nixl==1.5.1\n", "nixl>=1.5.1\n")
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"^error: constraints/cu13\.txt:\d+: 'nixl>=1\.5\.1': every line must pin one project with ==", err)


def test_swaps_the_family_model_no_longer_gives():
    recorded = (SwapLine("a-cu13", "a-cu12", "r.txt:1"),)
    document = ConstraintsDocument(12, "cuda-constraints compile", ("r.txt",), "00", "t", swapped=recorded)
    expected = MajorInput((), (), (SwapLine("b-cu13", "b-cu12", "r.txt:2"),))
    assert list(swap_problems(document, expected)) == [
        "the requirement b-cu13 (r.txt:2) is now swapped for b-cu12, which the file does not record",
        "the file records the swap a-cu13 -> a-cu12, which no longer applies",
    ]


def test_another_directory(repo, capsys):
    assert main(["compile", "-q", "-o", "out"]) == 0
    assert main(["check", "-o", "out"]) == 0
    (repo / "requirements" / "kv.txt").write_text(KV + "numpy\n")
    assert "fix: cuda-constraints compile -o out\n" in failed_check(capsys, "-o", "out")


def test_strict_needs_online(repo, capsys):
    assert main(["check", "--strict"]) == 2
    assert "--strict applies to --online" in capsys.readouterr().err


# -- --online -----------------------------------------------------------------------------------------------


def test_online_lists_what_an_upgrade_would_change_per_major(index, repo, capsys):
    before = (repo / "constraints" / "cu13.txt").read_bytes()
    index.add("cupy-cuda13x", "14.3.0", ["numpy"], tags=BOTH_ARCHES)
    index.add("cupy-cuda13x", "15.0.0rc1", ["numpy"], tags=BOTH_ARCHES)  # a pre-release is not news
    index.add("mooncake-transfer-engine-cuda13", "0.3.14", ["aiohttp"], tags=("cp312-cp312-manylinux_2_28_x86_64",))
    assert main(["check", "--online", "--refresh"]) == 0
    out = capsys.readouterr().out
    assert "constraints/cu13.txt: `cuda-constraints compile --upgrade` would change 1 pin(s):\n  cupy-cuda13x 14.2.0 -> 14.3.0\n" in out
    # No aarch64 wheel: not a candidate. cupy-cuda13x is not news for CUDA 12 (it has cupy-cuda12x).
    assert "mooncake" not in out and "cu12.txt" not in out.split("up to date")[-1]
    assert (repo / "constraints" / "cu13.txt").read_bytes() == before  # a dry run


def test_online_is_no_news_for_a_release_the_resolution_cannot_use(index, repo, capsys):
    """lmcache 0.5.6 needs cupy-cuda13x: newer, allowed by `lmcache>=0.3.9`, and never news for CUDA 12."""
    index.add("lmcache", "0.5.7", ["torch", "cupy-cuda13x", "cuda-python<14,>=13"], tags=BOTH_ARCHES)
    assert main(["check", "--online", "--strict", "--refresh"]) == 1
    out = capsys.readouterr().out
    assert "cu13.txt: `cuda-constraints compile --upgrade` would change 1 pin(s):\n  lmcache 0.5.6 -> 0.5.7" in out
    assert "cu12.txt: `" not in out


def test_online_strict_fails_with_the_upgrade_command(index, repo, capsys):
    index.add("cupy-cuda12x", "14.3.0", ["numpy"], tags=BOTH_ARCHES)
    err = failed_check(capsys, "--online", "--strict", "--refresh")
    assert "constraints/cu12.txt would change with --upgrade:\n  - cupy-cuda12x 14.2.0 -> 14.3.0\n" in err
    assert "fix: cuda-constraints compile --upgrade\n" in err and "cu13.txt would change" not in err


def test_online_with_nothing_new(index, repo, capsys):
    (repo / "requirements" / "kv.txt").write_text("cupy-cuda13x\nnixl\n")
    assert main(["compile", "-q"]) == 0
    assert main(["check", "--online", "--strict", "--no-cache"]) == 0
    assert "no pin would change with --upgrade" in capsys.readouterr().out


def test_online_honours_the_index_flags(index, repo, capsys):
    with respx.mock() as router:
        router.route(host="mirror.test").respond(503)
        assert main(["check", "--online", "--index-url", "https://mirror.test/simple", "--no-cache", "--retries", "0"]) == 5
    assert "https://mirror.test/simple/" in capsys.readouterr().err


def test_yanked_and_unmatched_releases_are_not_news(index, repo, capsys):
    index.add("nixl", "1.6.0", ["nixl-cu12==1.6.0", "nixl-cu13==1.6.0"], yanked=True)
    index.add("cupy-cuda13x", "14.1.1", ["numpy"], tags=BOTH_ARCHES)  # older than the pin
    assert main(["check", "--online", "--refresh"]) == 0
    out = capsys.readouterr().out
    assert "nixl " not in out and "cupy-cuda13x" not in out


def test_a_header_naming_a_missing_input(repo, capsys):
    edit(repo, 13, "#   cuda-constraints compile\n", "#   cuda-constraints compile -r requirements/gone.txt\n")
    err = failed_check(capsys)
    assert "constraints/cu13.txt is out of date:\n  - its command reads requirements/gone.txt, which does not exist" in err


# -- a damaged file, any damage --------------------------------------------------------------------------


@st.composite
def damaged(draw, text: str) -> bytes:
    """The file cut, with noise inserted, a line replaced, or bytes that are not UTF-8."""
    lines = text.splitlines(keepends=True)
    how = draw(st.sampled_from(["cut", "insert", "line", "bytes"]))
    noise = draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
    if how == "line":
        number = draw(st.integers(0, len(lines) - 1))
        lines[number] = noise + "\n"
        return "".join(lines).encode()
    position = draw(st.integers(0, len(text)))
    if how == "cut":
        return text[:position].encode()
    if how == "insert":
        return (text[:position] + noise + text[position:]).encode()
    return text[:position].encode() + draw(st.binary(min_size=1, max_size=8)) + text[position:].encode()


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_file_is_reported_never_a_traceback(repo, capsys, data):
    path = repo / "constraints" / "cu13.txt"
    original = (repo / "constraints" / "cu12.txt").read_text()
    path.write_bytes(data.draw(damaged(original.replace("CUDA 12", "CUDA 13", 1))))
    status = main(["check"])
    err = capsys.readouterr().err
    assert status in (1, 2) or (status == 0 and not err)
    assert "Traceback" not in err
    if status == 2:
        assert err.startswith("error: constraints/cu13.txt") and "regenerate it with `cuda-constraints compile`" in err
    if status == 1:
        assert err.startswith("error: constraints/cu1") and "  fix: " in err


def test_the_committed_files_match_the_committed_requirements(monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["check"]) == 0, capsys.readouterr().err
