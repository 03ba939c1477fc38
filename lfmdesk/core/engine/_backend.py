"""Choosing the fastest way to run MLX on this machine.

On Apple Silicon MLX uses Metal and the checkpoint's own dtype; nothing to do. On a CPU-only
MLX (the Linux ``mlx[cpu]`` wheel) the defaults are 10-50x slower than they need to be: the
wheel bundles the netlib reference BLAS (~6 GFLOP/s) and its bf16/fp16 and quantized matmuls
do not use BLAS at all. Measured on a 2-core x86-64 machine, full LFM2-VL-450M shape, a
512x512 image: bf16 as shipped 73 s to first token, float32 with OpenBLAS 6.1 s. So on CPU we
load an OpenBLAS into the global symbol scope *before* MLX is imported (after import it has no
effect), and the engine computes in float32 with quantized layers dequantized.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import sys
import sysconfig
from dataclasses import dataclass
from typing import Literal

__all__ = ["BackendInfo", "ComputeMode", "backend_info", "preload_blas"]

log = logging.getLogger("lfmdesk")

ComputeMode = Literal["auto", "native", "float32"]

# Sonames of a system OpenBLAS with the plain cblas_* symbols (Debian: libopenblas0-pthread).
_SYSTEM_BLAS = ("libopenblas.so.0", "libopenblas.so")
# Wheels that bundle an OpenBLAS with plain symbols; opencv-python comes with mlx-vlm.
# (numpy's scipy_openblas64_ uses suffixed symbols and cannot stand in.)
_BUNDLED_BLAS_GLOBS = ("opencv_python*.libs/libopenblas*.so*",)

_state: dict[str, str | None] = {}


@dataclass(frozen=True)
class BackendInfo:
    """What lfmdesk found about the MLX backend.

    Attributes:
        device: "gpu" (Metal) or "cpu".
        blas: path of the BLAS library preloaded for MLX, or None.
        mlx_imported_first: MLX was imported before lfmdesk could preload a BLAS.
    """

    device: str
    blas: str | None
    mlx_imported_first: bool

    @property
    def advice(self) -> str | None:
        """One line telling a CPU user how to get the fast path, or None when on it."""
        if self.device != "cpu" or self.blas:
            return None
        if self.mlx_imported_first:
            return "MLX was imported before lfmdesk; import lfmdesk.core first for fast CPU math"
        return (
            "no OpenBLAS found: CPU inference will be ~10x slower "
            "(install it: sudo apt-get install libopenblas0-pthread)"
        )


def _wants_cpu_blas() -> bool:
    # macOS uses Accelerate/Metal; only Linux wheels ship the slow reference BLAS.
    return sys.platform.startswith("linux") and os.environ.get("LFMDESK_NO_BLAS") != "1"


def _candidates() -> list[str]:
    found = list(_SYSTEM_BLAS)
    site = sysconfig.get_paths()["purelib"]
    for pattern in _BUNDLED_BLAS_GLOBS:
        found.extend(sorted(glob.glob(os.path.join(site, pattern))))
    return found


def preload_blas() -> str | None:
    """Load an OpenBLAS into the global symbol scope before MLX is imported (Linux only).

    Safe to call many times; only the first call does anything. Returns the library used.
    """
    if "blas" in _state:
        return _state["blas"]
    _state["blas"] = None
    _state["late"] = "1" if "mlx.core" in sys.modules else None
    if not _wants_cpu_blas() or _state["late"]:
        return None
    for name in _candidates():
        try:
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        _state["blas"] = name
        break
    return _state["blas"]


def backend_info() -> BackendInfo:
    """Describe the backend; imports MLX (after :func:`preload_blas`)."""
    preload_blas()
    import mlx.core as mx

    on_gpu = bool(mx.metal.is_available())
    return BackendInfo(
        device="gpu" if on_gpu else "cpu",
        blas=None if on_gpu else _state.get("blas"),
        mlx_imported_first=bool(_state.get("late")),
    )


def warn_once_if_slow() -> None:
    """Log the slow-CPU advice once per process."""
    if _state.get("warned"):
        return
    _state["warned"] = "1"
    advice = backend_info().advice
    if advice:
        log.warning(advice)
