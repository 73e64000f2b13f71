"""FLOPs of an encoder forward pass and the measured matmul peak of a device (for MFU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch


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

    and the encoder costs L times that, summed over sequences. A multiply-add counts as 2 FLOPs.
    These are exactly the matrix products of the transformer layers (what
    ``torch.utils.flop_counter.FlopCounterMode`` counts for a BERT layer with eager attention);
    biases, softmax, LayerNorm and the embedding lookup are not matrix products and are not
    counted. The task head (a token classifier adds ``2*n*h*num_labels``) and a pooler are outside
    the encoder and not counted either. Padding is not counted: pass the lengths the tokenizer
    produced before padding (special tokens included). Reads ``hidden_size``/``intermediate_size``/
    ``num_hidden_layers`` (or DistilBERT's ``dim``/``hidden_dim``/``n_layers``).

    Args:
        config: the model's configuration (e.g. ``model.config``).
        seq_lens: one real length in tokens per sequence.

    Returns:
        FLOPs (float).
    """
    h = _config_value(config, "hidden_size", "dim")
    f = _config_value(config, "intermediate_size", "hidden_dim")
    layers = _config_value(config, "num_hidden_layers", "n_layers")
    per_layer = sum(2 * (4 * h * h + 2 * h * f) * n + 4 * n * n * h for n in map(int, seq_lens))
    return float(layers * per_layer)


def mfu(flops: float, seconds: float, peak_flops_per_s: float) -> float:
    """Model FLOP utilisation: the achieved rate ``flops / seconds`` as a fraction of
    ``peak_flops_per_s`` (FLOP/s, e.g. from :func:`peak_matmul_flops`).

    Raises:
        ValueError: ``seconds`` or ``peak_flops_per_s`` is not positive.
    """
    if not seconds > 0 or not peak_flops_per_s > 0:
        raise ValueError(f"seconds and peak_flops_per_s must be positive, got {seconds}, {peak_flops_per_s}")
    return flops / seconds / peak_flops_per_s


def synchronize(device: str) -> None:
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
        synchronize(device)
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            torch.mm(a, b)
            synchronize(device)
            best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / max(best, 1e-12)
