"""The option table and the regenerate command a header gives: whatever flags a compile is given, reading
its header's command back makes the same request (paths, majors, targets, index, selection), the command
is a safe shell line, and no secret is in it."""

from __future__ import annotations

import shlex
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from resolver.commands.options import Flags, compile_request, describe_options, request_from_command
from resolver.files.config import load_config
from resolver.files.options import CONFIG_KEYS, OPTIONS

PYPROJECT = """\
[tool.cuda-constraints]
requirements = ["requirements/kv.txt"]
cuda = [12, 13]
allow-sdist = ["lmcache"]
"""
path_words = st.text(alphabet="abc ;'\"$&|-_.", min_size=1, max_size=12).filter(lambda t: t.strip(" ") and not t.startswith("-"))
flags = st.fixed_dictionaries(
    {},
    optional={
        "requirements": st.lists(path_words.map(lambda p: f"requirements/{p}.txt"), min_size=1, max_size=2),
        "cuda": st.lists(st.sampled_from([12, 13, 14]), min_size=1, max_size=3).map(lambda ms: ",".join(map(str, ms))),
        "python": st.lists(st.sampled_from(["3.10", "3.11", "3.12", "3.13"]), min_size=1, max_size=3),
        "platform": st.lists(st.sampled_from(["manylinux_2_28_x86_64", "manylinux_2_34_aarch64", "manylinux2014_x86_64"]), min_size=1, max_size=2),
        "output": path_words,
        "index": st.sampled_from(["https://mirror.example/simple", "https://user:s3cret@mirror.example/simple", "https://TOKEN@m.example/s"]),
        "pre": st.just(True),
        "allow_sdist": st.just(True),
        "sdist_packages": st.lists(st.sampled_from(["lmcache", "odfpy", "Foo_Bar"]), min_size=1, max_size=3),
        "exclude_newer": st.sampled_from(["2026-11-01", "2026-10-31T12:00:00Z"]),
        "hashes": st.just(True),
    },
)


def arguments(chosen: dict) -> list[str]:
    words: list[str] = []
    for path in chosen.get("requirements", []):
        words += ["-r", path]
    if "cuda" in chosen:
        words += ["--cuda", chosen["cuda"]]
    for python in chosen.get("python", []):
        words += ["--python-version", python]
    for platform in chosen.get("platform", []):
        words += ["--platform", platform]
    if "output" in chosen:
        words += ["-o", chosen["output"]]
    if "index" in chosen:
        words += ["--index-url", chosen["index"]]
    words += ["--pre"] * ("pre" in chosen) + ["--allow-sdist"] * ("allow_sdist" in chosen)
    for name in chosen.get("sdist_packages", []):
        words += ["--allow-sdist-package", name]
    if "exclude_newer" in chosen:
        words += ["--exclude-newer", chosen["exclude_newer"]]
    return words + ["--generate-hashes"] * ("hashes" in chosen)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=flags)
@example(chosen={"output": ".."})  # an output directory beside the project
def test_a_header_command_reads_back_as_the_same_request(tmp_path, monkeypatch, chosen):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    config = load_config(tmp_path)
    request = compile_request(Flags.from_argv(arguments(chosen)), config)
    assert "s3cret" not in request.command and "TOKEN" not in request.command
    words = shlex.split(request.command)  # one shell line: every value quoted
    assert words[:2] == ["cuda-constraints", "compile"]
    again, _ = request_from_command(request.command, config)
    assert again.command == request.command
    same = ("majors", "python_versions", "platforms", "selection", "generate_hashes")
    assert {f: getattr(again, f) for f in same} == {f: getattr(request, f) for f in same}
    assert [p.resolve() for p in again.requirement_files] == [p.resolve() for p in request.requirement_files]
    assert again.output_dir.resolve() == Path(request.output_dir).resolve()
    assert describe_options(again) == describe_options(request)


def test_the_table_spells_each_option_once():
    flags = [flag for option in OPTIONS for flag in option.flags]
    assert len(flags) == len(set(flags))
    assert len({option.dest for option in OPTIONS}) == len(OPTIONS)
    assert {"requirements", "cuda", "python-versions", "platforms", "index-url", "allow-sdist", "canaries"} <= CONFIG_KEYS


def test_flags_have_one_field_for_each_row_of_the_table_with_flags():
    """`Flags` is the table's: a row added (or removed) in files/options.py must be a field here too."""
    import dataclasses

    from resolver.commands.options import FLAG_SCOPES
    from resolver.files.options import options

    assert [field.name for field in dataclasses.fields(Flags)] == [option.dest for option in options(*FLAG_SCOPES) if option.flags]


@settings(max_examples=200, deadline=None)
@given(chosen=flags, more=st.fixed_dictionaries({}, optional={
    "offline": st.just(["--offline"]), "retries": st.sampled_from([["--retries", "0"], ["--retries", "9"]]),
    "timeout": st.just(["--timeout", "2.5"]), "upgrade": st.just(["-P", "nixl==1.5.1", "-P", "torch"]),
    "constraint": st.just(["-c", "c one.txt"]), "links": st.just(["--find-links", "/opt/wheels", "-f", "https://x.example/l"]),
}))
def test_flags_read_from_words_give_the_same_words_and_flags_back(chosen, more):
    """`to_argv` is the inverse of reading the words (`from_argv`): the same flags, whatever was given."""
    words = arguments(chosen) + [word for extra in more.values() for word in extra]
    read = Flags.from_argv(words)
    assert Flags.from_argv(read.to_argv()) == read
    assert read.to_argv() == Flags.from_argv(read.to_argv()).to_argv()
    assert ("--offline" in words) == read.offline and read.retries == (int(more["retries"][1]) if "retries" in more else 4)


def test_only_the_index_flags_of_check_reach_the_request_check_online_resolves():
    """`check -o DIR --online --index-url URL`: the index flags replace the files' own; -o is check's."""
    flags = Flags(output_dir=Path("elsewhere"), index_url="https://mirror.example/simple", find_links=("/opt/wheels",), offline=True)
    assert flags.only("index") == Flags(index_url="https://mirror.example/simple", find_links=("/opt/wheels",))
