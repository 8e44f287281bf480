"""What real projects' inputs need: variants chosen by extras (vLLM's `nvidia-cutlass-dsl[cu13]` and
`humming-kernels[cu13]`), per-major requirement files, excluded dependencies, constraints files, and the
platform a release needs. Shapes from vLLM 0.33.0's and sglang 0.5.23's real dependencies, served small."""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver.cli.main import main
from resolver.files.constraints import ExcludedLine, SwapLine, parse

from .synthetic import BOTH_ARCHES, KV_REQUIREMENTS, kv_connectors_index, served, write_project

FAST = ["-q", "--no-cache", "--retries", "0"]
ANY = ("py3-none-any",)


def vllm_variants_index():
    """The KV set, and the two ways vLLM's requirements pick a CUDA major by extra:
    `nvidia-cutlass-dsl` hard-requires `-libs-cu12` and its `[cu13]` extra adds `-libs-cu13` (and a
    `qnx-cu13` extra that selects nothing); `humming-kernels` has a `[cu12]` and a `[cu13]` extra."""
    index = kv_connectors_index()
    index.add(
        "nvidia-cutlass-dsl", "4.8.0", ["nvidia-cutlass-dsl-libs-base==4.8.0", "nvidia-cutlass-dsl-libs-cu12==4.8.0"],
        extras={"cu13": ("nvidia-cutlass-dsl-libs-cu13==4.8.0",), "qnx-cu13": ("nvidia-cutlass-dsl-libs-qnx-cu13==4.8.0",)},
        tags=ANY,
    )
    for name in ("nvidia-cutlass-dsl-libs-base", "nvidia-cutlass-dsl-libs-cu12", "nvidia-cutlass-dsl-libs-cu13"):
        index.add(name, "4.8.0", tags=BOTH_ARCHES)
    index.add(
        "humming-kernels", "0.1.19", ["numpy"],
        extras={"cu12": ("nvidia-cuda-runtime-cu12",), "cu13": ("nvidia-cuda-runtime==13.*",)}, tags=BOTH_ARCHES,
    )
    index.add("nvidia-cuda-runtime-cu12", "12.9.79", tags=BOTH_ARCHES)
    index.add("nvidia-cuda-runtime", "13.0.96", tags=BOTH_ARCHES)
    return index


@pytest.fixture
def index():
    with served(vllm_variants_index()) as index:
        yield index


def compiled(root: Path, requirements: str, config_extra: str = "", *arguments: str) -> dict[int, object]:
    write_project(root, requirements={"kv.txt": requirements})
    if config_extra:
        (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + config_extra)
    assert main(["compile", *FAST, *arguments]) == 0
    return {major: parse((root / "constraints" / f"cu{major}.txt").read_text(), f"cu{major}.txt") for major in (12, 13)}


def names(document) -> set[str]:
    return {pin.name for pin in document.pins}


def test_extras_select_the_major_with_no_configuration(index, tmp_path, inside):
    inside(tmp_path)
    files = compiled(tmp_path, "nvidia-cutlass-dsl[cu13] == 4.8.0\nhumming-kernels[cu13] == 0.1.19\n")
    cu12, cu13 = files[12], files[13]
    assert {"nvidia-cutlass-dsl-libs-cu13", "nvidia-cuda-runtime"} <= names(cu13)
    assert "nvidia-cutlass-dsl-libs-cu12" not in names(cu13) and "nvidia-cuda-runtime-cu12" not in names(cu13)
    assert cu13.excluded == (ExcludedLine("nvidia-cutlass-dsl-libs-cu12", "nvidia-cutlass-dsl==4.8.0"),) and cu13.swapped == ()
    assert {"nvidia-cutlass-dsl-libs-cu12", "nvidia-cuda-runtime-cu12"} <= names(cu12)
    assert not {"nvidia-cutlass-dsl-libs-cu13", "nvidia-cuda-runtime"} & names(cu12)
    assert cu12.excluded == ()
    # As vLLM's Dockerfile rewrites them for CUDA 12: the [cu12] extra where there is one, else none.
    assert cu12.swapped == (
        SwapLine("humming-kernels[cu13]==0.1.19", "humming-kernels[cu12]==0.1.19", "requirements/kv.txt:2"),
        SwapLine("nvidia-cutlass-dsl[cu13]==4.8.0", "nvidia-cutlass-dsl==4.8.0", "requirements/kv.txt:1"),
    )
    assert main(["check"]) == 0


def test_a_plain_requirement_of_such_a_meta_package_gets_the_major_extra(index, tmp_path, inside):
    inside(tmp_path)
    files = compiled(tmp_path, "nvidia-cutlass-dsl\n")
    assert "nvidia-cutlass-dsl-libs-cu13" in names(files[13]) and "nvidia-cutlass-dsl-libs-cu12" not in names(files[13])
    assert "nvidia-cutlass-dsl-libs-cu12" in names(files[12]) and "nvidia-cutlass-dsl-libs-cu13" not in names(files[12])
    assert "nvidia-cutlass-dsl-libs-qnx-cu13" not in names(files[13])  # `qnx-cu13` selects nothing


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_install_passes_the_swapped_extras_and_drops_the_excluded_edge(index, tmp_path, inside, capsys, installer):
    inside(tmp_path)
    compiled(tmp_path, "nvidia-cutlass-dsl[cu13] == 4.8.0\nhumming-kernels[cu13] == 0.1.19\n")
    capsys.readouterr()
    assert main(["install", "--cuda", "12", "--installer", installer, "--dry-run"]) == 0
    script = capsys.readouterr().out
    assert "'humming-kernels[cu12]==0.1.19'" in script and "nvidia-cutlass-dsl==4.8.0" in script and "[cu13]" not in script
    assert main(["install", "--cuda", "13", "--installer", installer, "--dry-run"]) == 0
    script = capsys.readouterr().out
    if installer == "uv":
        assert "nvidia-cutlass-dsl-libs-cu12" in script  # the --excludes file
    else:
        assert "--no-deps nvidia-cutlass-dsl==4.8.0" in script
