"""Which CUDA major a shared library belongs to, by its soname; which libraries are the CUDA toolkit's;
and which come from the driver.

Most CUDA libraries carry the CUDA major in their soname (`libcudart.so.12`, `libcublasLt.so.13`); cuFFT
and cuSOLVER are one behind (`libcufft.so.11` is CUDA 12, `.so.12` CUDA 13); cuRAND (`.so.10`), cuSPARSE
and cuFile keep one soname across majors, so only the wheel that ships them can tell. These are the
toolkit's libraries (what `cuda-toolkit` and the `nvidia-*` wheels of a major install): a program built
for the major needs them. Libraries NVIDIA ships as products of their own (NCCL, cuDNN, cuTENSOR,
NVSHMEM) are not in the table: an optional module loads them (cupy's cuTENSOR module), as others load
RDMA, MPI or TBB. The driver's libraries (`libcuda.so.1`, `libnvidia-ml.so.1`) come from the host.
"""

from __future__ import annotations

import re

_SONAME = re.compile(r"^(lib[A-Za-z0-9_+-]+?)\.so(?:\.(\d+)|$)")
_SAME_AS_MAJOR = frozenset({
    "libcudart", "libcublas", "libcublasLt", "libnvblas", "libnvrtc", "libnvrtc-builtins", "libnvJitLink",
    "libcupti", "libnvperf_host", "libnvperf_target", "libnvjpeg", "libnvfatbin", "libnppc", "libnppial",
    "libnppicc", "libnppidei", "libnppif", "libnppig", "libnppim", "libnppist", "libnppisu", "libnppitc",
    "libnpps",
})
_ONE_BEHIND = frozenset({"libcufft", "libcufftw", "libcusolver", "libcusolverMg"})
# The toolkit's libraries whose soname stays the same from one major to the next.
_SAME_IN_EVERY_MAJOR = frozenset({
    "libcurand", "libcusparse", "libcufile", "libcufile_rdma", "libnvToolsExt", "libnvtx3interop", "libnvvm",
})
DRIVER_LIBRARIES = ("libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libnvcuvid.so", "libnvidia-encode.so")


def library_major(soname: str) -> int | None:
    """The CUDA major a library's soname names (`libcudart.so.12` -> 12); None when it names none."""
    match = _SONAME.match(soname)
    if match is None or match.group(2) is None:
        return None
    stem, number = match.group(1), int(match.group(2))
    if stem in _SAME_AS_MAJOR:
        return number
    if stem in _ONE_BEHIND:
        return number + 1
    return None


def is_toolkit_library(soname: str) -> bool:
    """Whether a library is one of the CUDA toolkit's (`libcudart.so.13`, `libcurand.so.10`)."""
    match = _SONAME.match(soname)
    return match is not None and match.group(1) in _SAME_AS_MAJOR | _ONE_BEHIND | _SAME_IN_EVERY_MAJOR


def is_driver_library(soname: str) -> bool:
    return soname.startswith(DRIVER_LIBRARIES)
