"""What a run's numbers depend on besides its parameters: the CPU, the kernels torch and its math libraries
dispatch to there, the library versions, and the settings that pin those kernels.

Two runs with the same parameters and seed repeat to the last digit on one machine, but not across
machines: torch picks its CPU kernels by the instruction set it finds (``AVX512``, ``AVX2``...), and
oneMKL and oneDNN pick theirs by CPU model, so sums are added in another order and training amplifies
the difference. :func:`environment_tags` records all of it with every stage run (``env.*`` tags), so
that two runs can be compared knowing whether they computed alike, and :func:`fingerprint` reduces the
tags to what decides the numerics.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re

import torch

from findistill.costs.device import cpu_model

#: the tag prefix of environment tags
ENV_PREFIX = "env."
#: environment variables that pin the CPU kernels (torch's dispatch, oneMKL's conditional numerical
#: reproducibility, oneDNN's instruction set) or the thread counts, recorded when set
NUMERICS_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS",
                      "MKL_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG")
#: the libraries whose versions are recorded (absent ones are left out)
LIBRARIES = ("transformers", "tokenizers", "numpy", "onnxruntime", "mlflow")
#: the tags that decide a CPU computation's numerics (library versions of the tokenizer side and MLflow do not)
NUMERICS_KEYS = ("cpu_model", "cpu_capability", "blas", "torch", "transformers", "torch_threads",
                 *(name.lower() for name in NUMERICS_VARIABLES), "gpu_name")


def _blas() -> str:
    """The BLAS torch was built with, with its version when the build names it (``mkl 2024.2``)."""
    shown = torch.__config__.show()
    name = re.search(r"BLAS_INFO=(\w+)", shown)
    version = re.search(r"Math Kernel Library Version ([\w.]+)", shown)
    blas = name.group(1) if name else "unknown"
    return f"{blas} {version.group(1)}" if blas == "mkl" and version else blas


def environment_tags() -> dict[str, str]:
    """``env.*`` tags describing this process's numerics: ``cpu_model``, ``cpu_capability`` (the kernels
    torch dispatches to), ``blas``, ``torch``, ``torch_threads``, ``python``, ``platform``, the versions of
    :data:`LIBRARIES`, the :data:`NUMERICS_VARIABLES` that are set (lower-cased), and ``gpu_name`` when
    CUDA is available. Never raises: what cannot be read is left out."""
    readers = {
        "cpu_model": cpu_model,
        "cpu_capability": torch.backends.cpu.get_cpu_capability,
        "blas": _blas,
        "torch": lambda: torch.__version__,
        "torch_threads": lambda: str(torch.get_num_threads()),
        "python": platform.python_version,
        "platform": platform.platform,
        "gpu_name": lambda: torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        **{name: (lambda n=name: importlib.metadata.version(n)) for name in LIBRARIES},
        **{name.lower(): (lambda n=name: os.environ.get(n)) for name in NUMERICS_VARIABLES},
    }
    tags = {}
    for key, read in readers.items():
        try:
            value = read()
        except Exception:  # noqa: BLE001 - tags are best effort
            continue
        if value:
            tags[ENV_PREFIX + key] = str(value)
    return tags


def fingerprint(tags: dict[str, str]) -> str:
    """The part of a run's ``env.*`` tags that decides its numerics, as one readable line (``AMD EPYC,
    AVX512, mkl 2024.2, torch 2.13.0, transformers 5.1.0, 2 threads``); runs with different fingerprints
    may differ in the last digits even with the same parameters and seed. Empty for a run without the tags."""
    values = {key: tags.get(ENV_PREFIX + key) for key in NUMERICS_KEYS}
    parts = [values["cpu_model"], values["cpu_capability"], values["blas"],
             values["torch"] and f"torch {values['torch']}",
             values["transformers"] and f"transformers {values['transformers']}",
             values["torch_threads"] and f"{values['torch_threads']} threads",
             values["gpu_name"]]
    parts += [f"{name}={values[name.lower()]}" for name in NUMERICS_VARIABLES if values[name.lower()]]
    return ", ".join(p for p in parts if p)
