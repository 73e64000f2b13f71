"""Which device runs a model (``auto``, ``cpu``, ``cuda``, ``cuda:N``) and what it is (CPU model, GPU
name and driver via pynvml).
"""

from __future__ import annotations

import logging
import os
import platform

import torch

from findistill.config import ValueProblem
from findistill.costs.size import MB

logger = logging.getLogger(__name__)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what :mod:`platform` says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpu_info(device: str) -> dict[str, str]:
    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    info = {"gpu_name": torch.cuda.get_device_name(index)}
    try:
        import pynvml  # from nvidia-ml-py

        pynvml.nvmlInit()
        try:
            handle = _nvml_handle(pynvml, index)
            name = pynvml.nvmlDeviceGetName(handle)
            driver = pynvml.nvmlSystemGetDriverVersion()
            info["gpu_name"] = name.decode() if isinstance(name, bytes) else str(name)
            info["gpu_driver"] = driver.decode() if isinstance(driver, bytes) else str(driver)
            total = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            info["gpu_memory_total_mb"] = f"{total / MB:.0f}"
        finally:
            pynvml.nvmlShutdown()
    except Exception as err:  # noqa: BLE001 - NVML missing or failing: keep torch's name
        logger.debug("pynvml unavailable: %s", err)
    return info


def _nvml_handle(pynvml, index: int):
    """NVML handle of torch's device ``index`` (matched by UUID: indices differ under
    ``CUDA_VISIBLE_DEVICES``)."""
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is not None:
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        except Exception:  # noqa: BLE001 - fall back to the index
            pass
    return pynvml.nvmlDeviceGetHandleByIndex(index)


def device_info(device: str = "cpu") -> dict[str, str]:
    """Tags describing the machine a measurement ran on (strings, for ``mlflow.set_tags``).

    Always ``cpu_model``, ``cpu_logical_cores``, ``torch_version``, ``torch_threads``; on an
    available CUDA device also ``gpu_name`` and, through NVML (``nvidia-ml-py``), ``gpu_driver``
    and ``gpu_memory_total_mb``. Never raises: what cannot be read is left out.
    """
    info: dict[str, str] = {}
    for key, read in (
        ("cpu_model", cpu_model),
        ("cpu_logical_cores", lambda: str(os.cpu_count())),
        ("torch_version", lambda: torch.__version__),
        ("torch_threads", lambda: str(torch.get_num_threads())),
    ):
        try:
            info[key] = read()
        except Exception:  # noqa: BLE001 - tags are best effort
            pass
    try:
        if device.startswith("cuda") and torch.cuda.is_available():
            info.update(_gpu_info(device))
    except Exception as err:  # noqa: BLE001
        logger.debug("no GPU info for %s: %s", device, err)
    return info


def parse_device(device: str | torch.device) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` as a torch device; ValueProblem for anything else (``mps``, typos)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise ValueProblem("device", f"expected auto, cpu, cuda or cuda:N, got {str(device)!r}")
    return parsed


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` (N a visible GPU)
    pass through, except that ``cuda`` under a distributed launcher (``LOCAL_RANK`` set) is the process's
    own ``cuda:<LOCAL_RANK>``. Raises ValueProblem for anything else, before any work starts."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    parsed = parse_device(device)
    if parsed.type == "cuda":
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if visible == 0:
            raise ValueProblem("device", f"{device!r} requested but CUDA is not available here; use 'cpu' or 'auto'")
        if (parsed.index or 0) >= visible:
            raise ValueProblem("device", f"{device!r} requested but {visible} CUDA device(s) are visible here")
        local_rank = os.environ.get("LOCAL_RANK")
        if parsed.index is None and local_rank is not None:  # under torchrun: this process's own GPU
            return f"cuda:{local_rank}"
    return device
