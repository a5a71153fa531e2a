"""Which compute devices this build of uec can use.

The CPU core (``uec._core``) is always built. A CUDA module (``uec._cuda``) is optional; when
it is absent or no GPU is visible, ``device="auto"`` falls back to the CPU and
``device="cuda"`` raises an error that says why.
"""

from __future__ import annotations

from . import _core  # the CPU core is required

try:  # pragma: no cover - depends on the build
    from . import _cuda  # type: ignore[attr-defined]
except ImportError:  # built without CUDA
    _cuda = None


def cuda_built() -> bool:
    """True when this installation was compiled with the CUDA module."""
    return _cuda is not None


def cuda_device_count() -> int:
    """Number of usable CUDA devices (0 when the module is not built or no GPU is present)."""
    if _cuda is None:
        return 0
    try:
        return int(_cuda.device_count())
    except Exception:  # pragma: no cover - driver problems count as no device
        return 0


def cuda_available() -> bool:
    """True when ``device="cuda"`` can run: the module is built and a device is visible."""
    return cuda_device_count() > 0


def _cuda_status() -> str:
    try:
        return str(_cuda.device_status()[1]) or "no device"
    except Exception as exc:  # pragma: no cover - driver problems
        return repr(exc)


def optimizer(device: str):
    """The ``optimize`` function (same arguments as ``_core.optimize``) of a resolved device."""
    if device == "cuda":
        return _cuda.optimize
    return _core.optimize


def resolve_device(device: str) -> str:
    """Map "auto" | "cpu" | "cuda" to the device a fit runs on, or raise ValueError."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        if _cuda is None:
            raise ValueError(
                "device='cuda' was requested but this installation of uec was built without "
                "CUDA; rebuild from source with a CUDA compiler on PATH and UEC_CUDA=ON "
                "(pip install . -Ccmake.define.UEC_CUDA=ON), or use device='cpu'"
            )
        if not cuda_available():
            raise ValueError(
                "device='cuda' was requested but no CUDA device is usable by this process "
                f"(the CUDA runtime says: {_cuda_status()}); check the GPU driver and "
                "CUDA_VISIBLE_DEVICES, or use device='cpu'"
            )
        return "cuda"
    return "cuda" if cuda_available() else "cpu"
