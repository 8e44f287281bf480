"""The requirements-file reader: the syntax CI maintainers write, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver.errors import RequirementsFileError
from resolver.files.requirements import load_requirements


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def names(result) -> list[str]:
    return [str(r.requirement) for r in result.requirements]


def test_comments_blank_lines_continuations_markers_and_extras(tmp_path):
    path = write(
        tmp_path / "req.txt",
        "# a comment\n"
        "\n"
        "lmcache >= 0.3.9   # inline comment\n"
        "cupy-cuda13x \\\n"
        "    != 14.1.0\n"
        "nixl[cu13] >= 1.1.0 ; python_version >= '3.10'\n"
        "   # an indented comment \\\n"
        "mooncake-transfer-engine>=0.3.12#no space: part of the requirement\n",
    )
    with pytest.raises(RequirementsFileError) as failure:
        load_requirements([path], root=tmp_path)
    assert failure.value.line_number == 8  # pip: '#' starts a comment only after whitespace
    path.write_text(path.read_text().replace("#no space", " # after a space"))
    result = load_requirements([path], root=tmp_path)
    assert names(result) == [
        "lmcache>=0.3.9",
        "cupy-cuda13x!=14.1.0",
        'nixl[cu13]>=1.1.0; python_version >= "3.10"',
        "mooncake-transfer-engine>=0.3.12",
    ]
    assert [r.line_number for r in result.requirements] == [3, 4, 6, 8]
    assert result.requirements[1].origin == "req.txt:4"


def test_includes_are_relative_to_the_including_file(tmp_path):
    write(tmp_path / "requirements" / "base.txt", "numpy\n-c ../constraints/pins.txt\n")
    write(tmp_path / "constraints" / "pins.txt", "numpy < 3\n-r more-pins.txt\n")
    write(tmp_path / "constraints" / "more-pins.txt", "torch == 2.10.0\n")
    top = write(tmp_path / "requirements" / "kv.txt", "-r base.txt\nlmcache\n--pre\n--index-url https://mirror.example/simple\n")
    result = load_requirements([top], root=tmp_path)
    assert names(result) == ["numpy", "lmcache"]
    assert [str(c.requirement) for c in result.constraints] == ["numpy<3", "torch==2.10.0"]
    assert result.pre and result.index_url == "https://mirror.example/simple"
    assert [name for name, _ in result.files] == [
        "requirements/kv.txt", "requirements/base.txt", "constraints/pins.txt", "constraints/more-pins.txt",
    ]


def test_the_digest_covers_included_files(tmp_path):
    base = write(tmp_path / "base.txt", "numpy\n")
    top = write(tmp_path / "kv.txt", "-r base.txt\n")
    before = load_requirements([top], root=tmp_path).digest
    base.write_text("numpy < 3\n")
    assert load_requirements([top], root=tmp_path).digest != before


def test_include_cycles_are_detected(tmp_path):
    write(tmp_path / "a.txt", "numpy\n-r b.txt\n")
    write(tmp_path / "b.txt", "-r a.txt\n")
    with pytest.raises(RequirementsFileError) as failure:
        load_requirements([tmp_path / "a.txt"], root=tmp_path)
    assert "include cycle: a.txt -> b.txt -> a.txt" in str(failure.value)


def test_a_missing_include_names_the_including_line(tmp_path):
    top = write(tmp_path / "kv.txt", "numpy\n-r missing.txt\n")
    with pytest.raises(RequirementsFileError) as failure:
        load_requirements([top], root=tmp_path)
    assert str(failure.value).startswith("kv.txt:2: '-r missing.txt': -r missing.txt: no such file")
    assert failure.value.exit_code == 2


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("https://example.com/pkg.whl", "URLs are not supported"),
        ("git+https://github.com/ai-dynamo/nixl", "URLs are not supported"),
        ("nixl @ https://example.com/nixl.whl", "direct URL references are not supported"),
        ("-e ./local", "editable installs are not supported"),
        ("./vendor/nixl", "local paths are not supported"),
        ("dist/nixl-1.0-py3-none-any.whl", "local paths are not supported"),
        ("--trusted-host example.com", "option --trusted-host is not supported here"),
        ("nixl >=> 1", "not a valid requirement"),
        ("-c", "-c needs a file name"),
        ("--pre yes", "--pre takes no value"),
    ],
)
def test_unsupported_lines_name_file_line_and_text(tmp_path, line, problem):
    path = write(tmp_path / "req.txt", f"numpy\n\n{line}\n")
    with pytest.raises(RequirementsFileError) as failure:
        load_requirements([path], root=tmp_path)
    message = str(failure.value)
    assert message.startswith(f"req.txt:3: {line!r}: ")
    assert problem in message


def test_constraints_cannot_carry_extras(tmp_path):
    write(tmp_path / "c.txt", "nixl[cu13] < 2\n")
    top = write(tmp_path / "kv.txt", "-c c.txt\n")
    with pytest.raises(RequirementsFileError) as failure:
        load_requirements([top], root=tmp_path)
    assert "c.txt:1" in str(failure.value) and "extras" in str(failure.value)


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(RequirementsFileError) as failure:
        load_requirements([tmp_path / "absent.txt"], root=tmp_path)
    assert "no such file" in str(failure.value)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"numpy\n\xff\xfe\n")
    with pytest.raises(RequirementsFileError) as failure:
        load_requirements([binary], root=tmp_path)
    assert "not UTF-8" in str(failure.value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_any_text_parses_or_fails_naming_a_line(tmp_path, text):
    path = tmp_path / "fuzz.txt"
    path.write_text(text, encoding="utf-8")
    try:
        load_requirements([path], root=tmp_path)
    except RequirementsFileError as error:
        message = str(error)
        assert message.startswith(f"fuzz.txt:{error.line_number}: ")
        lines = text.splitlines()
        assert 1 <= error.line_number <= len(lines)  # a line of the file, not the file as a whole
        first = lines[error.line_number - 1].lstrip()
        if first.rstrip() != "\\":  # a lone continuation quotes the line it continues into
            assert error.line.startswith(first[:1])  # the line it quotes starts there


requirement_like = st.lists(
    st.one_of(
        st.sampled_from(["nixl", "cupy-cuda13x", "lmcache", "torch", "numpy", "nixl[cu13]"]),
        st.sampled_from([">=", "==", "!=", "<", "~=", "===", " @ ", ";", "[", "]", ",", "#", "\\\n", "-r ", "-c ", "--pre", " "]),
        st.text(alphabet="0123456789.abcrz*'\" =<>!()", max_size=6),
    ),
    max_size=8,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(requirement_like, max_size=6))
def test_requirement_shaped_text_parses_or_fails_naming_a_line(tmp_path, lines):
    path = tmp_path / "fuzz.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        load_requirements([path], root=tmp_path)
    except RequirementsFileError as error:
        assert str(error).startswith("fuzz.txt")
