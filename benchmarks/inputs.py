"""The benchmark's inputs: real projects' requirement files, and where each comes from.

- `kv`: this repository's requirements/kv_connectors.txt, with its own [tool.cuda-constraints].
- `vllm`: vLLM 0.33.0's requirements/cuda.txt (which includes common.txt) and kv_connectors.txt,
  byte for byte from its sdist on PyPI; provenance in tests/data/vllm-0.33.0/PROVENANCE.md. vLLM's
  runtime image is Ubuntu 24.04 (manylinux_2_34); its pyproject.toml excludes openai-harmony.
- `sglang`: sglang 0.5.23's Requires-Dist without extras, from its wheel's METADATA; provenance in
  tests/data/sglang-0.5.23/PROVENANCE.md. Its wheels are manylinux_2_34.
- `llama-index`: llama-index 0.11.14's Requires-Dist (13 lines), from its wheel's METADATA; provenance in
  tests/data/llama-index-0.11.14/PROVENANCE.md. No CUDA package: one target (CUDA 13, x86_64,
  manylinux_2_28), as uv's. Its `llama-index-*` dependencies pin each other in narrow ranges: a resolver
  walks down many releases (backtracking-heavy), and waits on the network unless it fetches ahead.
- `pytorch-local`: torch==2.14.0 and the KV set against two indexes served on 127.0.0.1 (tests/
  index_server.py): a PyPI-style one and a PyTorch-style one (HTML only, +cu129 and +cu130 builds),
  torch routed per major with torch-backend, as vLLM installs torch.

For uv, each input is also given as one target (CUDA 13, x86_64) the way a CI maintainer writes it by hand
today: the CUDA 13 names swapped in, the other major's members excluded.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VLLM = ROOT / "tests" / "data" / "vllm-0.33.0" / "requirements"
SGLANG = ROOT / "tests" / "data" / "sglang-0.5.23" / "requirements.txt"
LLAMA_INDEX = ROOT / "tests" / "data" / "llama-index-0.11.14" / "requirements.txt"
PYPI = "https://pypi.org/simple"
MANYLINUX_2_34 = 'platforms = ["manylinux_2_34_x86_64", "manylinux_2_34_aarch64"]\ncuda = [13]\n'


@dataclass(frozen=True)
class Input:
    name: str
    write: Callable[[Path, Any], list[Path]]  # writes the project; returns its requirement files
    config: Callable[[Any], str]  # the [tool.cuda-constraints] body
    excludes: tuple[str, ...] = ()  # for uv's one target, by hand
    swaps: tuple[tuple[str, str], ...] = ()
    uv_platform: str = "x86_64-manylinux_2_28"
    local: bool = False

    def project(self, directory: Path, served: Any) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        files = self.write(directory, served)
        listed = ", ".join(f'"{path.relative_to(directory).as_posix()}"' for path in files)
        (directory / "pyproject.toml").write_text(f"[tool.cuda-constraints]\nrequirements = [{listed}]\n{self.config(served)}")
        return directory

    def single_target(self, work: Path, served: Any) -> list[str]:
        """uv's arguments for CUDA 13 on x86_64: the requirements with the CUDA 13 names written in."""
        directory = work / "uv-input"
        shutil.rmtree(directory, ignore_errors=True)
        files = self.write(directory, served)
        for path in files:
            text = path.read_text()
            for original, replacement in self.swaps:
                text = re.sub(rf"^{re.escape(original)}\b", replacement, text, flags=re.MULTILINE)
            path.write_text(text)
        (directory / "excludes.txt").write_text("".join(f"{name}\n" for name in self.excludes))
        arguments = [*(str(path) for path in files), "--excludes", str(directory / "excludes.txt"), "--python-platform", self.uv_platform,
                     "--python-version", "3.12"]
        if self.local:
            from tests.index_server import PYTHON_VERSION

            arguments[-1] = PYTHON_VERSION  # the local index's wheels are for this interpreter
            pypi, pytorch = served
            arguments += ["--index-url", pypi.simple_url, "--extra-index-url", f"{pytorch.url}/whl/cu130", "--index-strategy", "unsafe-best-match"]
        else:
            arguments += ["--index-url", PYPI]
        return arguments


def _copy(*sources: Path) -> Callable[[Path, Any], list[Path]]:
    def write(directory: Path, served: Any) -> list[Path]:
        (directory / "requirements").mkdir(parents=True, exist_ok=True)
        for source in sources:
            shutil.copy(source, directory / "requirements" / source.name)
        return [directory / "requirements" / source.name for source in sources if source.name != "common.txt"]
    return write


def _torch_and_kv(directory: Path, served: Any) -> list[Path]:
    (directory / "requirements").mkdir(parents=True, exist_ok=True)
    path = directory / "requirements" / "vllm.txt"
    path.write_text("torch == 2.14.0\nlmcache >= 0.3.9\ncupy-cuda13x != 14.1.0\nnixl >= 1.1.0\nmooncake-transfer-engine >= 0.3.12\n")
    return [path]


def _local_config(served: Any) -> str:
    from tests.index_server import PLATFORM, PYTHON_VERSION

    pypi, pytorch = served
    return (f'index-url = "{pypi.simple_url}"\npytorch-index = "{pytorch.url}/whl"\npython-versions = ["{PYTHON_VERSION}"]\n'
            f'platforms = ["{PLATFORM}"]\n[tool.cuda-constraints.cuda.12]\ntorch-backend = "cu129"\n'
            '[tool.cuda-constraints.cuda.13]\ntorch-backend = "cu130"\n')


KV_CONFIG = 'allow-sdist = ["lmcache"]\n'
INPUTS = {
    source.name: source
    for source in (
        Input("kv", _copy(ROOT / "requirements" / "kv_connectors.txt"), lambda served: KV_CONFIG,
              excludes=("nixl-cu12",), swaps=(("mooncake-transfer-engine", "mooncake-transfer-engine-cuda13"),)),
        Input("vllm", _copy(VLLM / "cuda.txt", VLLM / "common.txt", VLLM / "kv_connectors.txt"),
              lambda served: MANYLINUX_2_34 + 'exclude-dependencies = ["openai-harmony"]\n',
              excludes=("nixl-cu12", "nvidia-cutlass-dsl-libs-cu12", "openai-harmony"),
              swaps=(("mooncake-transfer-engine", "mooncake-transfer-engine-cuda13"),), uv_platform="x86_64-manylinux_2_34"),
        Input("sglang", _copy(SGLANG), lambda served: MANYLINUX_2_34, excludes=("nvidia-cutlass-dsl-libs-cu12",),
              uv_platform="x86_64-manylinux_2_34"),
        Input("llama-index", _copy(LLAMA_INDEX), lambda served: 'cuda = [13]\nplatforms = ["manylinux_2_28_x86_64"]\n'),
        Input("pytorch-local", _torch_and_kv, _local_config, excludes=("nixl-cu12",),
              swaps=(("mooncake-transfer-engine", "mooncake-transfer-engine-cuda13"),), local=True),
    )
}


@contextlib.contextmanager
def local_indexes() -> Iterator[tuple[Any, Any]]:
    """The PyPI-style and PyTorch-style indexes of the tests, served on 127.0.0.1."""
    from tests.index_server import IndexServer, pypi_like, pytorch_like

    with IndexServer(pypi_like()) as pypi, IndexServer(pytorch_like()) as pytorch:
        yield pypi, pytorch
