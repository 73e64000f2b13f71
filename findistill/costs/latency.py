"""Resource metrics: what a model costs (parameters, size on disk, latency, memory, efficiency).

Every evaluation logs the same metric names (``RESOURCE_METRICS``, plus ``GPU_RESOURCE_METRICS``
on a GPU) so runs compare across stages and versions. Units:

- parameters: counts; sizes and memory: MB = 1e6 bytes;
- latency: milliseconds per batch, end to end (tokenisation of pre-split words + forward pass);
- throughput: words per second at batch 32;
- ``mfu_cpu_b32``: model FLOP utilisation at batch 32: encoder FLOPs on the real (unpadded)
  tokens divided by the time of the forward passes alone (batches tokenised beforehand), as a
  fraction of the fp32 matmul peak measured in the same process (see ``encoder_flops``,
  ``peak_matmul_flops`` and ``mfu``).

``measure_resources`` measures a model held by the calling process; ``measure_saved_models``
measures saved models in one fresh Python process, one after the other, so memory and latency
do not depend on what the caller did before (training, other models) and several models are
compared under the same process state.

This module is library code: it returns plain dicts and never touches MLflow.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import psutil
import torch

from findistill.costs.flops import encoder_flops, mfu, peak_matmul_flops, synchronize
from findistill.costs.size import MB, count_parameters, model_size_mb, saved_size_mb

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
GPU_RESOURCE_METRICS: tuple[str, ...] = (
    "latency_gpu_b1_ms_p50",
    "latency_gpu_b1_ms_p95",
    "latency_gpu_b32_ms_p50",
    "throughput_gpu_words_per_s",
    "gpu_peak_mem_mb",
)


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
            synchronize(device)
            start = time.perf_counter()
            run(batch)
            synchronize(device)
            latencies.append((time.perf_counter() - start) * 1000.0)
    return latencies


def _encode_batches(
    tokenizer, batches: list[list[list[str]]], *, keys: set[str] | None, device: str, max_length: int
) -> list[dict[str, torch.Tensor]]:
    """Tokenise each batch as ``measure_latency`` does (padding to the batch's longest sequence,
    truncation to ``max_length``) and put the tensors the model takes on ``device``."""
    encoded = []
    for batch in batches:
        enc = _tokenize(tokenizer, batch, max_length, padding=True, return_tensors="pt")
        encoded.append({k: v.to(device) for k, v in enc.items() if keys is None or k in keys})
    return encoded


def measure_forward_latency(
    model, inputs: Sequence[dict[str, torch.Tensor]], *, device: str = "cpu", warmup: int = 3
) -> list[float]:
    """Latency of the forward pass alone per pre-tokenised batch, in ms.

    ``inputs`` are the model's keyword arguments per batch (tensors already on ``device``, as
    ``_encode_batches`` makes them). The first ``warmup`` batches (cycling) run untimed, then each
    batch is timed once, in eval mode under ``torch.inference_mode()``; on CUDA the device is
    synchronised before each clock read.

    Returns:
        One latency in ms per element of ``inputs``, in order.
    """
    if not inputs:
        raise ValueError("need at least one batch to time")
    latencies = []
    with _eval_mode(model), torch.inference_mode():
        for k in range(max(0, warmup)):
            model(**inputs[k % len(inputs)])
        for batch in inputs:
            synchronize(device)
            start = time.perf_counter()
            model(**batch)
            synchronize(device)
            latencies.append((time.perf_counter() - start) * 1000.0)
    return latencies


class PeakRSS:
    """Context manager sampling this process's resident memory in a background thread.

    ``peak_mb`` is the largest RSS (MB = 1e6 bytes) seen between enter and exit, sampled every
    ``interval_s`` and once at each end. It includes the whole Python process (interpreter,
    libraries, model weights, and whatever the process still holds from earlier work), not only
    what the measured code allocates: run it in a fresh process (``measure_saved_models``) to get
    the memory of inference alone.
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


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def _model_device(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def _latency_metrics(
    model, tokenizer, sentences, *, device: str, prefix: str, max_length: int, n_b1: int, n_b32: int
) -> tuple[dict[str, float], list[list[list[str]]], list[float]]:
    """Batch-1 and batch-32 end-to-end latency metrics under ``prefix`` (``cpu``/``gpu``).

    Returns the metrics, the timed batch-32 batches and their end-to-end latencies (ms).
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
    peak_flops: float | None = None,
) -> dict[str, float]:
    """Measure every resource metric of ``model`` in this process on a fixed set of real sentences.

    Args:
        sentences: pre-split words, e.g. a test split's first few hundred sentences.
        model_dir: saved model folder to measure on disk; if None the model is saved to a
            temporary folder with ``save_pretrained(safe_serialization=True)``.
        device: ``"cpu"`` or ``"cuda[:i]"``; on an available CUDA device the GPU metrics are
            measured too (the CPU ones always are). The model is moved between devices in
            place for this and moved back to its original device at the end.
        threads: torch intra-op threads for the CPU measurement (restored afterwards).
        n_b1: timed batch-1 batches; n_b32: timed batch-32 batches (after 3 warm-up batches).
        peak_flops: the CPU's fp32 matmul peak in FLOP/s for ``mfu_cpu_b32``, measured with the
            same threads; if None, ``peak_matmul_flops("cpu")`` is measured here.

    Returns:
        Exactly ``RESOURCE_METRICS`` (plus ``GPU_RESOURCE_METRICS`` on CUDA), as floats:
        parameter counts; ``model_size_mb`` (MB); latencies p50/p95 in ms per batch, end to end
        (tokenisation + forward); ``throughput_*_words_per_s`` over the timed batch-32 batches;
        ``peak_rss_mb``: peak resident memory (MB) of the whole calling process while CPU
        latency is measured, so it includes the Python baseline and anything the process held
        before (use ``measure_saved_models`` for a fresh process); ``tokens_per_word`` over all
        ``sentences``; ``mfu_cpu_b32``: ``encoder_flops`` on the real (unpadded) tokens of the
        ``n_b32`` batch-32 batches divided by the summed time of their forward passes alone
        (tokenised beforehand, after 3 untimed warm-up passes), over ``peak_flops``;
        ``cpu_threads``; on CUDA ``gpu_peak_mem_mb`` (``torch.cuda.max_memory_allocated``, MB).
    """
    original_device = _model_device(model)
    metrics: dict[str, float] = {k: float(v) for k, v in count_parameters(model).items()}
    if model_dir is not None:
        metrics["model_size_mb"] = model_size_mb(model_dir)
    else:
        metrics["model_size_mb"] = saved_size_mb(model)

    model.to("cpu")
    try:
        with _num_threads(threads) as n_threads:
            with PeakRSS() as rss:
                cpu, b32_batches, _ = _latency_metrics(
                    model, tokenizer, sentences, device="cpu", prefix="cpu",
                    max_length=max_length, n_b1=n_b1, n_b32=n_b32,
                )
            inputs = _encode_batches(
                tokenizer, b32_batches, keys=_forward_keys(model), device="cpu", max_length=max_length
            )
            forward_ms = measure_forward_latency(model, inputs, device="cpu")
            del inputs
            peak = peak_matmul_flops("cpu") if peak_flops is None else float(peak_flops)
        seq_lens = [n for batch in b32_batches for n in _seq_lens(tokenizer, batch, max_length)]
        metrics.update(cpu)
        metrics["peak_rss_mb"] = rss.peak_mb
        metrics["tokens_per_word"] = tokens_per_word(tokenizer, sentences, max_length)
        metrics["mfu_cpu_b32"] = mfu(encoder_flops(model.config, seq_lens), sum(forward_ms) / 1000.0, peak)
        metrics["cpu_threads"] = float(n_threads)

        if device.startswith("cuda") and torch.cuda.is_available():
            if is_cpu_only(model):
                logger.warning("this model runs on CPU only (dynamic int8 or ONNX Runtime): no GPU metrics")
            else:
                gpu = _gpu_metrics(model, tokenizer, sentences, device, max_length, n_b1, n_b32)
                metrics.update(gpu)
    finally:
        model.to(original_device)  # the caller gets its model back where it was
    return metrics


def is_cpu_only(model: torch.nn.Module) -> bool:
    """True for eager-mode quantized models (``torch.ao.nn.quantized``: no CUDA kernels) and for models that
    say so (``cpu_only``: ONNX Runtime on its CPU execution provider)."""
    if getattr(model, "cpu_only", False):
        return True
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
