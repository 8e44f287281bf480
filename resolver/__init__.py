"""cuda-constraints: pinned, CUDA-consistent constraints files for GPU Python projects."""

__version__ = "0.1.0"
