"""Costs of saved models measured side by side in one fresh Python process (:func:`measure_saved_models`).

The caller's state (a model it just trained, optimizer memory, warm caches) does not reach the
measuring process; the models are measured one at a time, in alternating order over rounds.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import psutil
import torch

from findistill.costs.flops import peak_matmul_flops
from findistill.costs.latency import measure_resources
from findistill.costs.size import MB

logger = logging.getLogger(__name__)


#: extra metrics of ``measure_saved_models`` (MB): the fresh process's RSS before any model was
#: loaded, and ``peak_rss_mb`` minus it
FRESH_PROCESS_METRICS: tuple[str, ...] = ("rss_baseline_mb", "peak_rss_increase_mb")


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def _release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``) so that
    the resident size drops after a model is freed; a no-op where there is no glibc."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _round_orders(names: Sequence[str], rounds: int) -> list[list[str]]:
    """Measurement order per round: ``names`` in even rounds, reversed in odd ones (A B, B A, ...),
    so no model is always measured first or last."""
    return [list(names) if r % 2 == 0 else list(reversed(names)) for r in range(rounds)]


def _median_metrics(measured: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per metric, the median over several measurements of one model (the keys of the first)."""
    if not measured:
        raise ValueError("no measurement to aggregate")
    return {k: float(np.median([m[k] for m in measured])) for k in measured[0]}


def _measure_in_this_process(request: dict) -> dict[str, dict[str, float]]:
    """What the fresh process does for ``measure_saved_models`` (``request`` holds its arguments).

    Order: set the thread count, import the loaders, measure the CPU matmul peak (which also
    starts torch's thread pool), free memory and read the baseline RSS; then per round and model
    (see ``_round_orders``): load the model and its tokenizer, ``measure_resources``, free both.
    """
    from findistill.models.loading import load_tokenizer
    from findistill.runtimes.variants import load_inference_model

    if request["threads"] is not None:
        torch.set_num_threads(int(request["threads"]))
    peak = peak_matmul_flops("cpu")
    _release_memory()
    baseline = _rss_mb()
    dirs: dict[str, str] = request["model_dirs"]
    measured: dict[str, list[dict[str, float]]] = {name: [] for name in dirs}
    for order in _round_orders(list(dirs), request["rounds"]):
        for name in order:
            trust = request["trust_remote_code"]
            model = load_inference_model(dirs[name], threads=request["threads"], trust_remote_code=trust)
            tokenizer = load_tokenizer(dirs[name], trust_remote_code=trust)
            metrics = measure_resources(
                model, tokenizer, request["sentences"], model_dir=dirs[name], device=request["device"],
                max_length=request["max_length"], n_b1=request["n_b1"], n_b32=request["n_b32"],
                peak_flops=peak,
            )
            metrics["rss_baseline_mb"] = baseline
            metrics["peak_rss_increase_mb"] = metrics["peak_rss_mb"] - baseline
            measured[name].append(metrics)
            del model, tokenizer
            _release_memory()
    return {name: _median_metrics(runs) for name, runs in measured.items()}


def _measure_saved_main(request_path: str, result_path: str) -> None:
    """Entry point of the fresh process: read the JSON request, write the JSON result."""
    logging.basicConfig(level=logging.WARNING)
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    result = _measure_in_this_process(request)
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")


def measure_saved_models(
    model_dirs: Mapping[str, str | os.PathLike],
    sentences: list[list[str]],
    *,
    max_length: int = 128,
    device: str = "cpu",
    threads: int | None = None,
    rounds: int = 1,
    n_b1: int = 50,
    n_b32: int = 8,
    trust_remote_code: bool = False,
    timeout_s: float | None = None,
) -> dict[str, dict[str, float]]:
    """Measure saved token-classification models side by side in one fresh Python process.

    A new interpreter (``sys.executable``, not a fork) is started for the call; the caller's state
    (a trained model, optimizer memory, warm caches) does not reach it, and every model of the
    call is measured under the same process state on the same ``sentences``. In it the models are
    measured one at a time with ``measure_resources``: load the model and its tokenizer from the
    folder (``load_inference_model``: any runtime variant; ``load_tokenizer``), measure, free both
    and trim the heap before the next. With ``rounds`` > 1 the models are measured again in alternating order
    (A B, B A, ...) and each metric is the median over rounds. The CPU matmul peak for
    ``mfu_cpu_b32`` is measured once in that process and shared by all models.

    Args:
        model_dirs: name -> folder written by ``save_pretrained`` (or a variant folder of
            :mod:`findistill.runtimes`) holding the model and its fast tokenizer, e.g.
            ``{"teacher": ..., "student": ...}``.
        sentences: pre-split words; the same for every model.
        device: ``"cpu"`` or ``"cuda[:i]"`` (GPU metrics too, as in ``measure_resources``).
        threads: torch intra-op threads in the fresh process; None: the caller's current
            ``torch.get_num_threads()``.
        rounds: measurements per model (alternating order between rounds).
        n_b1, n_b32: timed batch-1 and batch-32 batches, as in ``measure_resources``.
        trust_remote_code: passed to the loaders (models with custom code).
        timeout_s: kill the fresh process after this many seconds (None: no limit).

    Returns:
        name -> metrics: ``RESOURCE_METRICS`` (plus ``GPU_RESOURCE_METRICS`` on CUDA) and
        ``FRESH_PROCESS_METRICS``. ``peak_rss_mb`` is the peak resident memory (MB) of the fresh
        process while that model's CPU latency is measured: interpreter, torch and transformers,
        the model's weights and tokenizer, and inference activations, with no other model
        loaded. ``rss_baseline_mb`` is the process's RSS after imports, before any model was
        loaded; ``peak_rss_increase_mb = peak_rss_mb - rss_baseline_mb`` is what loading and
        running that model added (weights, activations, the model code's first import). Freed
        memory is returned to the OS before the next model, but any residue the allocator keeps
        counts towards the models measured later; alternating rounds spread it.

    Raises:
        FileNotFoundError: a folder does not exist or has no ``config.json``.
        RuntimeError: the fresh process failed (its stderr is in the message).
        subprocess.TimeoutExpired: it ran longer than ``timeout_s``.
    """
    if not model_dirs:
        raise ValueError("no model to measure")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    dirs = {name: str(Path(folder).resolve()) for name, folder in model_dirs.items()}
    for name, folder in dirs.items():
        if not (Path(folder) / "config.json").is_file():
            raise FileNotFoundError(f"model {name!r}: {folder} is not a saved model folder (no config.json)")
    request = {
        "model_dirs": dirs, "sentences": [list(map(str, s)) for s in sentences], "max_length": int(max_length),
        "device": device, "threads": int(threads if threads is not None else torch.get_num_threads()),
        "rounds": int(rounds), "n_b1": int(n_b1), "n_b32": int(n_b32),
        "trust_remote_code": bool(trust_remote_code),
    }
    code = (
        "import sys; from findistill.costs.fresh_process import _measure_saved_main; "
        "_measure_saved_main(sys.argv[1], sys.argv[2])"
    )
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding ``findistill``
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="findistill-measure-") as tmp:
        request_path, result_path = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_path.write_text(json.dumps(request), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-c", code, str(request_path), str(result_path)],
            capture_output=True, text=True, env=env, timeout=timeout_s, check=False,
        )
        if done.returncode != 0 or not result_path.is_file():
            raise RuntimeError(
                f"measuring {', '.join(dirs)} in a fresh process failed (exit {done.returncode}):\n"
                f"{done.stderr[-4000:]}"
            )
        if done.stderr.strip():
            logger.debug("fresh measurement process stderr:\n%s", done.stderr[-4000:])
        return json.loads(result_path.read_text(encoding="utf-8"))
