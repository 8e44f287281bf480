"""The variant-family model: every naming scheme, as data."""

from __future__ import annotations

import pytest
from packaging.version import Version

from resolver.model.families import FamilyTable, family_from_config

TABLE = FamilyTable()


@pytest.mark.parametrize(
    ("name", "version", "major", "scheme"),
    [
        ("nixl-cu12", None, 12, "name"),
        ("nixl_cu13", None, 13, "name"),
        ("nvidia-nccl-cu13", None, 13, "name"),
        ("nvidia-cudnn-cu12", None, 12, "name"),
        ("cupy-cuda12x", None, 12, "name"),
        ("cupy-cuda13x", None, 13, "name"),
        ("mooncake-transfer-engine", None, 12, "declared default"),
        ("mooncake-transfer-engine-cuda13", None, 13, "name"),
        ("jax-cuda12-plugin", None, 12, "name"),
        ("cuda-toolkit", "13.2.2", 13, "version major"),
        ("cuda-bindings", "12.9.4", 12, "version major"),
        ("cuda-python", "13.4.4", 13, "version major"),
        ("nvidia-cuda-runtime", "13.2.86", 13, "version major"),
        ("nvidia-cublas", "13.4.1.3", 13, "version major"),
        ("nvidia-cufft", "12.2.0.57", 13, "exists only for this major"),
        ("nvidia-cusolver", "12.2.0.11", 13, "exists only for this major"),
    ],
)
def test_every_scheme_names_its_major(name, version, major, scheme):
    variant = TABLE.classify(name, Version(version) if version else None)
    assert variant is not None and variant.role == "member"
    assert (variant.major, variant.scheme) == (major, scheme)


@pytest.mark.parametrize("name", ["torch", "numpy", "cuda-core", "cuda-pathfinder", "nvidia-ml-py", "pycuda", "cufile-python"])
def test_projects_outside_every_family(name):
    assert TABLE.classify(name) is None
    assert TABLE.fits(name, Version("1.0"), 12) and TABLE.fits(name, Version("1.0"), 13)


def test_meta_package():
    variant = TABLE.classify("nixl")
    assert variant.role == "meta" and variant.major is None
    assert variant.family.member_name(13) == "nixl-cu13"
    assert TABLE.fits("nixl", Version("1.5.1"), 12)


def test_fits_and_placeholder_versions():
    assert TABLE.fits("cuda-toolkit", Version("12.9.1"), 12)
    assert not TABLE.fits("cuda-toolkit", Version("13.2.2"), 12)
    assert not TABLE.fits("cuda-toolkit", Version("0.0.0a0"), 13)  # placeholder releases name no major
    assert not TABLE.fits("nvidia-cufft", Version("12.2.0.57"), 12)


def test_swaps_follow_the_family_naming():
    assert TABLE.swap_target("cupy-cuda13x", 12) == "cupy-cuda12x"
    assert TABLE.swap_target("mooncake-transfer-engine", 13) == "mooncake-transfer-engine-cuda13"
    assert TABLE.swap_target("mooncake-transfer-engine-cuda13", 12) == "mooncake-transfer-engine"
    assert TABLE.swap_target("nixl-cu12", 14) == "nixl-cu14"
    assert TABLE.swap_target("cupy-cuda12x", 12) is None
    assert TABLE.swap_target("nixl", 12) is None  # the meta package keeps its place
    assert TABLE.swap_target("cuda-toolkit", 12) is None  # same name, other versions


def test_families_from_configuration_come_first():
    custom = family_from_config("deepep", {"members": "deep-ep-cu{major}", "meta": True})
    table = FamilyTable((custom, *TABLE.families))
    assert table.classify("deepep").role == "meta"
    assert table.classify("deep-ep-cu13").major == 13
    default = family_from_config("trtllm-kv", {"members": "trtllm-kv-cuda{major}", "default-major": 13})
    table = FamilyTable((default, *TABLE.families))
    assert table.classify("trtllm-kv").major == 13
    assert table.swap_target("trtllm-kv", 12) == "trtllm-kv-cuda12"
    fixed = family_from_config("newlibs", {"version-major": ["nvidia-newlib"], "fixed-major": {"nvidia-oldlib": 13}})
    table = FamilyTable((fixed, *TABLE.families))
    assert table.classify("nvidia-newlib", Version("14.0")).major == 14
    assert table.classify("nvidia-oldlib", Version("2.0")).major == 13
