"""Resolution cases over a frozen snapshot of the real index, offline (tests/frozen.py; refreeze with
`python -m tests.frozen`): each case's requirements, per CUDA major, give exactly the recorded pins,
exclusions and swaps, as resolvelib's functional tests run over their frozen indexes; and vLLM's CUDA 12
inputs, compiled as its README configures them, against the snapshot and its imitated PyTorch index."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from resolver.errors import CudaConstraintsError
from resolver.files.constraints import parse
from resolver.model.families import FamilyTable

from .frozen import FrozenIndex, cases, compile_case, compile_project, outcome, write_pyproject

CASES = cases()
VLLM = Path(__file__).parent / "data" / "vllm-0.33.0" / "requirements"


@pytest.fixture(scope="module")
def index() -> FrozenIndex:
    return FrozenIndex()


def test_there_are_cases():
    assert CASES and all(case.expected for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case, index, tmp_path, caplog):
    """The recorded pins, exclusions and swaps, from a snapshot that holds every file the resolution read
    (a release skipped for want of its metadata would make the expectation the snapshot's, not the
    index's); and no file holds a package of another major."""
    with caplog.at_level(logging.WARNING):
        result = compile_case(case, index, tmp_path)
    assert [r.getMessage() for r in caplog.records if "not in the frozen snapshot" in r.getMessage()] == []
    assert outcome(result) == case.expected
    families = FamilyTable()
    for o in result.outcomes:
        majors = {families.major_of(pin.name, pin.version) for pin in o.new.pins} - {None}
        assert majors == {o.major}, (case.name, o.major, majors)


# -- vLLM 0.33.0 for CUDA 12 ---------------------------------------------------------------------------------


@pytest.fixture
def vllm_cu12(tmp_path) -> Path:
    """vLLM's requirements in a project configured as the README's vLLM recipe (x86_64 only)."""
    shutil.copytree(VLLM, tmp_path / "requirements")
    write_pyproject(tmp_path, {
        "requirements": ["requirements/cuda.txt"],
        "platforms": ["manylinux_2_34_x86_64"],
        "exclude-dependencies": ["openai-harmony"],
        "cuda": {"12": {"torch-backend": "cu129", "extra-requirements": ["requirements/kv_connectors_cu12.txt"]}},
    })
    return tmp_path


def test_vllm_cuda_12_fails_on_nixl_builds_for_older_torch_naming_the_pin_and_the_builds(vllm_cu12, index):
    """nixl 1.5.0's CUDA 12 member ships nixl_ep for torch 2.11 to 2.13; vLLM pins torch 2.14.0."""
    with pytest.raises(CudaConstraintsError) as failure:
        compile_project(vllm_cu12, index)
    message = failure.value.message()
    assert failure.value.exit_code == 4
    assert message.startswith("CUDA 12 (cp312 manylinux_2_34_x86_64): cannot resolve the requirements")
    assert "torch==2.14.0 is required by requirements/cuda.txt:7" in message
    assert "nixl-cu12==1.5.0's wheel has builds for torch 2.11, 2.12, 2.13" in message
    assert not (vllm_cu12 / "constraints").exists()
    # The builds of the other nixl releases (none for torch 2.14 either), the nearest one, and the way out.
    assert ("builds per torch version, newest releases first: nixl-cu12 1.5.1 (2.11–2.13), 1.5.0 (2.11–2.13), "
            "1.4.1 (2.11–2.13)") in message, message
    assert ("no nixl release has a build for torch 2.14.0 (nearest: nixl-cu12 1.5.1, builds for torch 2.11, 2.12, 2.13); "
            "to write the file anyway, where those builds will not load, pass --allow-torch-build-mismatch nixl") in message


def test_vllm_cuda_12_is_written_when_the_nixl_ep_mismatch_is_allowed_and_its_header_says_so(vllm_cu12, index, caplog):
    """`--allow-torch-build-mismatch nixl`: torch from the PyTorch index of CUDA 12.9, nixl 1.5.0 with its
    CUDA 12 member, nothing of CUDA 13; the header records that nixl_ep will not load with that torch."""
    with caplog.at_level(logging.WARNING):
        compile_project(vllm_cu12, index, ["--allow-torch-build-mismatch", "nixl"])
    path = vllm_cu12 / "constraints" / "cu12.txt"
    text = path.read_text()
    document = parse(text, str(path))
    pins = {pin.name: str(pin.version) for pin in document.pins}
    assert pins["torch"] == "2.14.0+cu129" and pins["torchvision"] == "0.29.0+cu129"
    assert pins["nixl"] == pins["nixl-cu12"] == "1.5.0" and pins["lmcache"] == "0.5.6" and "cupy-cuda12x" in pins
    families = FamilyTable()
    assert {families.major_of(pin.name, pin.version) for pin in document.pins} - {None} == {12}
    assert [line.name for line in document.excluded] == ["nixl-cu13", "nvidia-cutlass-dsl-libs-cu13"]
    assert "#   explicit https://download.pytorch.org/whl/cu129  (serves torch, torchaudio, torchcodec, torchvision, triton)\n" in text
    assert "#   find-links https://github.com/LMCache/LMCache/releases/expanded_assets/v0.5.6-cu129  (serves lmcache)\n" in text
    assert ("#   nixl-cu12==1.5.0: nixl_ep will not load: builds for torch 2.11, 2.12, 2.13; "
            "torch 2.14.0+cu129 pinned by requirements/cuda.txt:7\n") in text
    assert any("nixl-cu12==1.5.0" in record.getMessage() and "2.14" in record.getMessage() for record in caplog.records)
