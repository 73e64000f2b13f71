"""Resource metrics: what a model costs (parameters, size on disk, latency, memory, efficiency).

Every evaluation logs the same metric names (``RESOURCE_METRICS``, plus ``GPU_RESOURCE_METRICS``
on a GPU) so runs compare across stages and versions. Units:

- parameters: counts; sizes and memory: MB = 1e6 bytes;
- latency: milliseconds per batch, end to end (tokenisation of pre-split words + forward pass);
- throughput: words per second at batch 32;
- ``mfu_cpu_b32``: model FLOP utilisation, a fraction of the fp32 matmul peak measured in the
  same call (see ``encoder_flops`` and ``peak_matmul_flops``).

This module is library code: it returns plain dicts and never touches MLflow.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import platform
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import torch

logger = logging.getLogger(__name__)

RESOURCE_METRICS: tuple[str, ...] = (
    "params_total",
    "params_embedding",
    "params_encoder",
    "model_size_mb",
    "latency_cpu_b1_ms_p50",
    "latency_cpu_b1_ms_p95",
    "latency_cpu_b32_ms_p50",
    "throughput_cpu_words_per_s",
    "peak_rss_mb",
    "tokens_per_word",
    "mfu_cpu_b32",
    "cpu_threads",
)
"""Metric names measured on every machine, in logging order."""

GPU_RESOURCE_METRICS: tuple[str, ...] = (
    "latency_gpu_b1_ms_p50",
    "latency_gpu_b1_ms_p95",
    "latency_gpu_b32_ms_p50",
    "throughput_gpu_words_per_s",
    "gpu_peak_mem_mb",
)
"""Metric names added by ``measure_resources`` when it runs on an available CUDA device."""

WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".onnx")
MB = 1e6  # bytes

_ENCODER_ATTRS = ("encoder", "transformer", "layers", "layer")  # BERT-like, DistilBERT, others


# --------------------------------------------------------------------------------------------
# Parameters and size
# --------------------------------------------------------------------------------------------


def _module_tensors(module: torch.nn.Module | None) -> dict[object, int]:
    """Unique weight tensors of ``module`` as {identity key: number of elements} ({} for None).

    Shared (tied) parameters appear once: keyed by storage address and shape, so two Parameter
    objects viewing the same memory also count once. Dynamically quantized modules keep their
    weights packed outside ``parameters()`` (``weight()`` / ``bias()`` are methods); those are
    counted too so an int8 model reports the same parameter count as its float original.
    """
    tensors: dict[object, int] = {}
    if module is None:
        return tensors
    for p in module.parameters():
        tensors[_storage_key(p)] = p.numel()
    for m in module.modules():
        for name in ("weight", "bias"):
            accessor = getattr(m, name, None)
            if callable(accessor) and not isinstance(accessor, torch.Tensor):  # packed weight
                try:
                    t = accessor()
                except Exception:  # noqa: BLE001 - not a weight accessor after all
                    continue
                if isinstance(t, torch.Tensor):  # a fresh unpacked copy: key by its owner
                    tensors[("packed", id(m), name)] = t.numel()
    return tensors


def _storage_key(t: torch.Tensor) -> object:
    """Identity of a tensor's memory: tensors viewing the same storage get the same key."""
    try:
        ptr = t.data_ptr() if t.device.type != "meta" else 0
    except (RuntimeError, NotImplementedError):  # tensor subclasses without plain storage
        ptr = 0
    return (ptr, tuple(t.shape)) if ptr else ("id", id(t))


def _numel(module: torch.nn.Module | None) -> int:
    """Number of unique parameters in ``module`` (0 for None)."""
    return sum(_module_tensors(module).values())


def _embedding_module(base: torch.nn.Module, model: torch.nn.Module) -> torch.nn.Module | None:
    embeddings = getattr(base, "embeddings", None)
    if isinstance(embeddings, torch.nn.Module):
        return embeddings
    get = getattr(model, "get_input_embeddings", None)
    return get() if callable(get) else None


def _encoder_module(base: torch.nn.Module) -> torch.nn.Module | None:
    for name in _ENCODER_ATTRS:
        module = getattr(base, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return None


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Count a model's parameters by part.

    Returns:
        ``params_total``: all unique parameters (tied weights counted once), head included;
        ``params_embedding``: the base model's embeddings module (for BERT: word, position and
        token-type embeddings and their LayerNorm); without one, the input embedding matrix;
        ``params_encoder``: the transformer layers (``base_model.encoder``, or DistilBERT's
        ``transformer``); without such a module, every base-model parameter outside the
        embeddings. The task head (and a pooler) count in the total only.
    """
    base = getattr(model, "base_model", None)
    base = model if base is None else base
    emb = _module_tensors(_embedding_module(base, model))
    enc_module = _encoder_module(base)
    if enc_module is not None:
        enc = _module_tensors(enc_module)
    else:
        enc = {k: n for k, n in _module_tensors(base).items() if k not in emb}
    return {
        "params_total": _numel(model),
        "params_embedding": sum(emb.values()),
        "params_encoder": sum(enc.values()),
    }


def model_size_mb(path: str | os.PathLike) -> float:
    """Size on disk in MB (1e6 bytes) of the weights of a saved model.

    ``path`` is a folder (every ``*.safetensors``, ``*.bin``, ``*.pt``, ``*.onnx`` under it,
    recursively, so an MLflow model folder works too; tokenizer and config files are ignored)
    or a single weight file.

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no weight file.
    """
    path = Path(path)
    if path.is_file():
        return path.stat().st_size / MB
    if not path.is_dir():
        raise FileNotFoundError(f"model path {path} does not exist")
    files = [f for f in path.rglob("*") if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES)]
    if not files:
        raise FileNotFoundError(
            f"no weight file ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}) under {path}"
        )
    return sum(f.stat().st_size for f in files) / MB


def _saved_size_mb(model: torch.nn.Module) -> float:
    """Save ``model`` to a temporary folder (safetensors) and return its weights' size in MB.

    Models that ``save_pretrained`` cannot serialise (e.g. dynamically quantized ones, whose
    packed weights safetensors rejects) are measured as a ``torch.save`` of their state dict.
    """
    with tempfile.TemporaryDirectory(prefix="findistill-size-") as tmp:
        if hasattr(model, "save_pretrained"):
            try:
                model.save_pretrained(tmp, safe_serialization=True)
                return model_size_mb(tmp)
            except Exception as err:  # noqa: BLE001 - any serialisation failure → fallback
                logger.warning("save_pretrained failed (%s); measuring torch.save instead", err)
        target = Path(tmp) / "state_dict.pt"
        torch.save(model.state_dict(), target)
        return model_size_mb(target)


# --------------------------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------------------------


def _config_value(config, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    raise ValueError(f"config {type(config).__name__} has none of {names}")


def encoder_flops(config, seq_lens: Sequence[int]) -> float:
    """Forward FLOPs of a BERT-like encoder on sequences of the given real (unpadded) lengths.

    With hidden size h, feed-forward size f, L layers and a sequence of n tokens, one layer costs

        2 * (4*h*h + 2*h*f) * n      # Q, K, V, output projections + the two FFN matrices
      + 2 * 2 * n*n * h              # attention scores Q.K^T and the weighted sum over V

    and the encoder costs L times that, summed over sequences. A multiply-add counts as 2 FLOPs;
    biases, softmax, LayerNorm, embeddings and the classifier are ignored (small next to the
    matmuls). Reads ``hidden_size``/``intermediate_size``/``num_hidden_layers`` (or DistilBERT's
    ``dim``/``hidden_dim``/``n_layers``).

    Returns:
        FLOPs (float).
    """
    h = _config_value(config, "hidden_size", "dim")
    f = _config_value(config, "intermediate_size", "hidden_dim")
    layers = _config_value(config, "num_hidden_layers", "n_layers")
    per_layer = sum(2 * (4 * h * h + 2 * h * f) * n + 4 * n * n * h for n in map(int, seq_lens))
    return float(layers * per_layer)


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def peak_matmul_flops(device: str = "cpu", n: int = 2048, repeats: int = 3) -> float:
    """Measured fp32 matmul peak of ``device`` in FLOP/s.

    Times ``torch.mm`` of two n x n fp32 matrices (2*n^3 FLOPs) ``repeats`` times after one
    warm-up and returns the best rate. Uses the current ``torch.get_num_threads()`` on CPU.
    """
    a = torch.randn(n, n, dtype=torch.float32, device=device)
    b = torch.randn(n, n, dtype=torch.float32, device=device)
    best = math.inf
    with torch.inference_mode():
        torch.mm(a, b)  # warm-up
        _synchronize(device)
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            torch.mm(a, b)
            _synchronize(device)
            best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / max(best, 1e-12)


# --------------------------------------------------------------------------------------------
# Batches, tokenisation, latency
# --------------------------------------------------------------------------------------------


def _batches(sentences: list[list[str]], batch_size: int, n_batches: int) -> list[list[list[str]]]:
    """``n_batches`` consecutive full batches of ``sentences``, cycling when they run out."""
    if not sentences:
        raise ValueError("need at least one sentence to measure latency")
    if batch_size < 1 or n_batches < 1:
        raise ValueError(f"batch_size and n_batches must be >= 1, got {batch_size}, {n_batches}")
    total = len(sentences)
    return [
        [sentences[(k * batch_size + j) % total] for j in range(batch_size)]
        for k in range(n_batches)
    ]


def _tokenize(tokenizer, batch: list[list[str]], max_length: int, **kwargs):
    return tokenizer(
        batch,
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
        **kwargs,
    )


def _word_and_token_counts(
    tokenizer, sentences: list[list[str]], max_length: int
) -> tuple[int, int]:
    """(words, real sub-tokens) the model sees in ``sentences`` after truncation.

    Tokens exclude special tokens and padding. Words are counted up to the last word that keeps
    at least one token (a word cut by truncation counts with the tokens it kept). Needs a fast
    tokenizer (``word_ids``).
    """
    words = tokens = 0
    for start in range(0, len(sentences), 256):
        chunk = sentences[start : start + 256]
        enc = _tokenize(tokenizer, chunk, max_length)
        for i in range(len(chunk)):
            ids = [w for w in enc.word_ids(i) if w is not None]
            tokens += len(ids)
            words += (max(ids) + 1) if ids else 0
    return words, tokens


def _seq_lens(tokenizer, sentences: list[list[str]], max_length: int) -> list[int]:
    """Real (unpadded) sequence lengths, special tokens included, as the encoder sees them."""
    enc = _tokenize(tokenizer, sentences, max_length)
    return [len(ids) for ids in enc["input_ids"]]


def tokens_per_word(tokenizer, sentences: list[list[str]], max_length: int = 128) -> float:
    """Real sub-tokens per word (special tokens and padding excluded) over ``sentences``."""
    words, tokens = _word_and_token_counts(tokenizer, sentences, max_length)
    return tokens / words if words else float("nan")


def _forward_keys(model: torch.nn.Module) -> set[str] | None:
    """Named arguments of ``model.forward``, to drop tokenizer outputs the model does not take
    (e.g. ``token_type_ids`` for DistilBERT); None (pass everything) if it names no input_ids."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    params = inspect.signature(model.forward).parameters.values()
    named = {p.name for p in params if p.kind not in variadic}
    return named if "input_ids" in named else None


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def measure_latency(
    model,
    tokenizer,
    sentences: list[list[str]],
    *,
    batch_size: int,
    device: str = "cpu",
    max_length: int = 128,
    warmup: int = 3,
    max_batches: int = 50,
) -> list[float]:
    """End-to-end inference latency per batch, in ms.

    Each timed step tokenises a batch of pre-split words (``is_split_into_words=True``, dynamic
    padding to the longest sequence, truncation to ``max_length``) and runs the forward pass in
    eval mode under ``torch.inference_mode()``. Batches are consecutive full slices of
    ``sentences``, cycling through them when there are fewer than ``max_batches * batch_size``;
    the first ``warmup`` batches are run untimed first, then exactly ``max_batches`` batches are
    timed from the start of ``sentences`` (so the timed set does not depend on ``warmup``).
    On CUDA the device is synchronised before each clock read. The model must already be on
    ``device``.

    Returns:
        ``max_batches`` latencies in ms, in batch order.
    """
    keys = _forward_keys(model)

    def run(batch: list[list[str]]) -> None:
        enc = _tokenize(tokenizer, batch, max_length, padding=True, return_tensors="pt")
        inputs = {k: v.to(device) for k, v in enc.items() if keys is None or k in keys}
        model(**inputs)

    timed = _batches(sentences, batch_size, max_batches)
    latencies = []
    with _eval_mode(model), torch.inference_mode():
        for batch in _batches(sentences, batch_size, warmup) if warmup > 0 else []:
            run(batch)
        for batch in timed:
            _synchronize(device)
            start = time.perf_counter()
            run(batch)
            _synchronize(device)
            latencies.append((time.perf_counter() - start) * 1000.0)
    return latencies


# --------------------------------------------------------------------------------------------
# Memory and threads
# --------------------------------------------------------------------------------------------


class PeakRSS:
    """Context manager sampling this process's resident memory in a background thread.

    ``peak_mb`` is the largest RSS (MB = 1e6 bytes) seen between enter and exit, sampled every
    ``interval_s`` and once at each end. It includes the whole Python process (interpreter,
    libraries, model weights), not only what the measured code allocates.
    """

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / MB)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakRSS:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@contextmanager
def _num_threads(threads: int | None) -> Iterator[int]:
    """Set torch's intra-op thread count for the block (if given); yield the count in use."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------------
# All resource metrics
# --------------------------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def _model_device(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def _latency_metrics(
    model, tokenizer, sentences, *, device: str, prefix: str, max_length: int, n_b1: int, n_b32: int
) -> tuple[dict[str, float], list[list[list[str]]], list[float]]:
    """Batch-1 and batch-32 latency metrics under ``prefix`` (``cpu``/``gpu``).

    Returns the metrics, the timed batch-32 batches and their latencies (ms).
    """
    b1 = measure_latency(
        model, tokenizer, sentences, batch_size=1, device=device, max_length=max_length,
        max_batches=n_b1,
    )
    b32 = measure_latency(
        model, tokenizer, sentences, batch_size=32, device=device, max_length=max_length,
        max_batches=n_b32,
    )
    batches = _batches(sentences, 32, n_b32)
    words = sum(_word_and_token_counts(tokenizer, b, max_length)[0] for b in batches)
    metrics = {
        f"latency_{prefix}_b1_ms_p50": _percentile(b1, 50),
        f"latency_{prefix}_b1_ms_p95": _percentile(b1, 95),
        f"latency_{prefix}_b32_ms_p50": _percentile(b32, 50),
        f"throughput_{prefix}_words_per_s": words / (sum(b32) / 1000.0),
    }
    return metrics, batches, b32


def measure_resources(
    model,
    tokenizer,
    sentences: list[list[str]],
    *,
    model_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    max_length: int = 128,
    threads: int | None = None,
    n_b1: int = 50,
    n_b32: int = 8,
) -> dict[str, float]:
    """Measure every resource metric of ``model`` on a fixed set of real sentences.

    Args:
        sentences: pre-split words, e.g. a test split's first few hundred sentences.
        model_dir: saved model folder to measure on disk; if None the model is saved to a
            temporary folder with ``save_pretrained(safe_serialization=True)``.
        device: ``"cpu"`` or ``"cuda[:i]"``; on an available CUDA device the GPU metrics are
            measured too (the CPU ones always are). The model is moved between devices in
            place for this and moved back to its original device at the end.
        threads: torch intra-op threads for the CPU measurement (restored afterwards).
        n_b1: timed batch-1 batches; n_b32: timed batch-32 batches (after 3 warm-up batches).

    Returns:
        Exactly ``RESOURCE_METRICS`` (plus ``GPU_RESOURCE_METRICS`` on CUDA), as floats:
        parameter counts; ``model_size_mb`` (MB); latencies p50/p95 in ms per batch, end to end
        (tokenisation + forward); ``throughput_*_words_per_s`` over the timed batch-32 batches;
        ``peak_rss_mb``: peak resident memory of the whole process (Python baseline included)
        while CPU latency is measured; ``tokens_per_word`` over all ``sentences``;
        ``mfu_cpu_b32``: ``encoder_flops`` on the real tokens of the timed batch-32 batches per
        second of their (end-to-end) time, divided by ``peak_matmul_flops("cpu")`` measured
        here with the same threads; ``cpu_threads``; on CUDA ``gpu_peak_mem_mb``
        (``torch.cuda.max_memory_allocated``, MB).
    """
    original_device = _model_device(model)
    metrics: dict[str, float] = {k: float(v) for k, v in count_parameters(model).items()}
    if model_dir is not None:
        metrics["model_size_mb"] = model_size_mb(model_dir)
    else:
        metrics["model_size_mb"] = _saved_size_mb(model)

    model.to("cpu")
    try:
        with _num_threads(threads) as n_threads:
            with PeakRSS() as rss:
                cpu, b32_batches, b32_ms = _latency_metrics(
                    model, tokenizer, sentences, device="cpu", prefix="cpu",
                    max_length=max_length, n_b1=n_b1, n_b32=n_b32,
                )
            peak = peak_matmul_flops("cpu")
        seq_lens = [n for batch in b32_batches for n in _seq_lens(tokenizer, batch, max_length)]
        flops_per_s = encoder_flops(model.config, seq_lens) / (sum(b32_ms) / 1000.0)
        metrics.update(cpu)
        metrics["peak_rss_mb"] = rss.peak_mb
        metrics["tokens_per_word"] = tokens_per_word(tokenizer, sentences, max_length)
        metrics["mfu_cpu_b32"] = flops_per_s / peak
        metrics["cpu_threads"] = float(n_threads)

        if device.startswith("cuda") and torch.cuda.is_available():
            if _is_cpu_only(model):
                logger.warning("dynamically quantized model runs on CPU only: no GPU metrics")
            else:
                gpu = _gpu_metrics(model, tokenizer, sentences, device, max_length, n_b1, n_b32)
                metrics.update(gpu)
    finally:
        model.to(original_device)  # the caller gets its model back where it was
    return metrics


def _is_cpu_only(model: torch.nn.Module) -> bool:
    """True for eager-mode quantized models (``torch.ao.nn.quantized``: no CUDA kernels)."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def _gpu_metrics(model, tokenizer, sentences, device, max_length, n_b1, n_b32) -> dict[str, float]:
    """GPU latency/throughput metrics and peak allocated GPU memory (MB) on ``device``."""
    model.to(device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    gpu, _, _ = _latency_metrics(
        model, tokenizer, sentences, device=device, prefix="gpu",
        max_length=max_length, n_b1=n_b1, n_b32=n_b32,
    )
    gpu["gpu_peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / MB
    return gpu


# --------------------------------------------------------------------------------------------
# Device tags and reporting
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
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
        ("cpu_model", _cpu_model),
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


_UNITS = (  # (name test, unit), first match wins
    (lambda k: k.startswith("params_"), "parameters"),
    (lambda k: "_ms_" in k or k.endswith("_ms"), "ms"),
    (lambda k: k.endswith("_mb"), "MB"),
    (lambda k: k.endswith("_words_per_s"), "words/s"),
    (lambda k: k == "tokens_per_word", "tokens/word"),
    (lambda k: k.startswith("mfu_"), "of fp32 matmul peak"),
    (lambda k: k.endswith("_threads"), "threads"),
)


def _unit(name: str) -> str:
    return next((unit for test, unit in _UNITS if test(name)), "")


def _format_value(name: str, value: float) -> str:
    if name.startswith("params_") or name.endswith("_threads"):
        return f"{int(value):,}"
    if name.startswith("mfu_"):
        return f"{100 * value:.3g} %"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def format_resources_table(metrics: dict[str, float]) -> str:
    """A markdown table of resource metrics (``| metric | value | unit |``), in the order
    given, for logging as a text artifact."""
    lines = ["| metric | value | unit |", "|---|---:|---|"]
    for name, value in metrics.items():
        lines.append(f"| {name} | {_format_value(name, value)} | {_unit(name)} |")
    return "\n".join(lines) + "\n"
